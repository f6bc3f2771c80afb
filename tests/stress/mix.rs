//! The randomized mix: `tasks` coroutines, each given one job by a seeded plan
//! (compute and yield, sleep, spawn and join children, send or receive on shared
//! channels of every kind and through `select!`, take `corun::sync` locks, wait on
//! a condition variable, panic (sometimes holding the mutex), run scoped children,
//! wait forever until cancelled, or race a cancellation), spawned in batches by
//! coroutines and by plain threads that also cancel and join them.
//!
//! What proves nothing was lost or run twice:
//! - per task: its body ran at most once, its closure was dropped exactly once, and
//!   its `join()` gave exactly what the plan predicts (a value computed from the seed,
//!   its own panic payload, or `Cancelled`, with "finished" marked iff it returned);
//! - per channel token: created once, dropped once, received at most once, and each
//!   receiving task got one; every condition-variable item taken once;
//! - the shared mutex and rwlock hold the sum the plan predicts, the semaphore never
//!   let more in than its permits;
//! - the runtime counted as many spawns and ends as the test made, and none is live.
//!
//! Any blocking operation that loses its wake-up leaves a join waiting forever,
//! which the watchdog reports. The plan guarantees progress for a correct runtime:
//! every batch is spawned whole before it is joined, sends and receives on each
//! channel pair balance within a batch, and condition-variable items are posted
//! before the join, so a wait that never ends means an item or partner was there.

use crate::common::{mix64, say, Rng, Watchdog};
use corun::chan::{self, Receiver, Sender};
use corun::sync::{Condvar, Mutex, RwLock, Semaphore};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub tasks: usize,
    pub workers: usize,
    /// Spawners that are coroutines.
    pub co_spawners: usize,
    /// Spawners that are plain threads.
    pub thread_spawners: usize,
    pub batch: usize,
    pub watchdog: Duration,
    /// A deliberate bug, for the self-tests: `hang` (a task parks with nobody to wake
    /// it) or `lose` (a received token is forgotten instead of dropped).
    pub inject: Option<String>,
}

/// Permits of the shared semaphore.
const PERMITS: usize = 3;
/// Channel pairs shared by every spawner: (first, second) capacity; `None` is
/// unbounded, `Some(0)` rendezvous.
const PAIRS: [(Option<usize>, Option<usize>); 3] =
    [(Some(0), Some(0)), (Some(4), None), (Some(1), Some(0))];
/// Tokens a pipeline sender sends.
const PIPE_TOKENS: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Job {
    Compute { yields: u8 },
    Sleep { micros: u16 },
    Spawn { children: u8, nested: bool },
    Send { pair: u8, hub: u8, select: bool },
    Recv { pair: u8, how: u8 },
    Lock { yield_inside: bool },
    Write,
    Read,
    Sem,
    CondTake,
    Panic { hold_lock: bool, real: bool },
    Scoped { children: u8 },
    Victim { how: u8 },
    Racer { yields: u8, cancel_after: u8 },
    PipeSend,
}

const VICTIM_WAYS: u8 = 8;
const RECV_WAYS: u8 = 4;

/// A task's outcome as its join gives it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Value(u64),
    Panicked(u64),
    Cancelled,
}

/// The panic payload of `Job::Panic`.
struct PanicTok(u64);

struct Shared {
    seed: u64,
    inject: Option<String>,
    /// `inject = lose`: set by the receiver that forgets its token.
    lost_one: AtomicBool,
    ran: Vec<AtomicU8>,
    finished: Vec<AtomicU8>,
    closure_drops: Vec<AtomicU8>,
    // Tokens: id = 4 * task + slot.
    tok_made: Vec<AtomicU8>,
    tok_recv: Vec<AtomicU8>,
    tok_drops: Vec<AtomicU8>,
    pairs: Vec<Pair>,
    mutex: Mutex<u64>,
    rw: RwLock<(u64, u64)>,
    sem: Semaphore,
    sem_inside: AtomicUsize,
    sem_max: AtomicUsize,
    mailbox: Mutex<VecDeque<u64>>,
    mail_cv: Condvar,
    mail_taken: Vec<AtomicU8>,
    /// Coroutines spawned by the test (tasks, children, helpers), for the metrics.
    spawned: AtomicU64,
    /// Children of victims: spawned, and their guards dropped.
    victim_children: AtomicU64,
    victim_children_dropped: AtomicU64,
    // Progress, for the watchdog's report.
    joined: AtomicU64,
    batches: AtomicU64,
    spawners_done: AtomicU64,
    ok: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
}

fn atomics(n: usize) -> Vec<AtomicU8> {
    (0..n).map(|_| AtomicU8::new(0)).collect()
}

impl Shared {
    fn new(cfg: &Config) -> Shared {
        let n = cfg.tasks;
        let pairs = PAIRS
            .iter()
            .map(|&(a, b)| {
                let mk = |c: Option<usize>| match c {
                    Some(c) => chan::bounded(c),
                    None => chan::unbounded(),
                };
                let (ta, ra) = mk(a);
                let (tb, rb) = mk(b);
                (ta, ra, tb, rb)
            })
            .collect();
        Shared {
            seed: cfg.seed,
            inject: cfg.inject.clone(),
            lost_one: AtomicBool::new(false),
            ran: atomics(n),
            finished: atomics(n),
            closure_drops: atomics(n),
            tok_made: atomics(4 * n),
            tok_recv: atomics(4 * n),
            tok_drops: atomics(4 * n),
            pairs,
            mutex: Mutex::new(0),
            rw: RwLock::new((0, 0)),
            sem: Semaphore::new(PERMITS),
            sem_inside: AtomicUsize::new(0),
            sem_max: AtomicUsize::new(0),
            mailbox: Mutex::new(VecDeque::new()),
            mail_cv: Condvar::new(),
            mail_taken: atomics(n),
            spawned: AtomicU64::new(0),
            victim_children: AtomicU64::new(0),
            victim_children_dropped: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            spawners_done: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }

    fn h(&self, i: usize) -> u64 {
        mix64(self.seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    fn report(&self, cfg: &Config) -> String {
        // The tasks that started and are still alive (closure not dropped, no end
        // marked): where the hang is. Victims count only if they were not cancelled.
        let mut stuck = Vec::new();
        for start in (0..cfg.tasks).step_by(cfg.batch) {
            let end = (start + cfg.batch).min(cfg.tasks);
            for (k, job) in plan(cfg.seed, start, end).into_iter().enumerate() {
                let i = start + k;
                if self.ran[i].load(SeqCst) == 1
                    && self.finished[i].load(SeqCst) == 0
                    && self.closure_drops[i].load(SeqCst) == 0
                {
                    stuck.push(format!("task {i} {job:?}"));
                }
            }
        }
        let shown = stuck.len().min(40);
        let stuck = format!(
            "{} tasks started and not ended: {}{}",
            stuck.len(),
            stuck[..shown].join(", "),
            if shown < stuck.len() { ", ..." } else { "" }
        );
        format!(
            "seed {seed} (reproduce: CORUN_STRESS_SEED={seed}), {tasks} tasks, {w} workers, \
             {cs} coroutine + {ts} thread spawners, batches of {b}\n\
             progress: {j} joined ({ok} ok, {p} panicked, {c} cancelled), {bt} batches done, \
             {sd} spawners done, {sp} coroutines spawned, mailbox holds {mb}\n{stuck}",
            seed = cfg.seed,
            tasks = cfg.tasks,
            w = cfg.workers,
            cs = cfg.co_spawners,
            ts = cfg.thread_spawners,
            b = cfg.batch,
            j = self.joined.load(SeqCst),
            ok = self.ok.load(SeqCst),
            p = self.panicked.load(SeqCst),
            c = self.cancelled.load(SeqCst),
            bt = self.batches.load(SeqCst),
            sd = self.spawners_done.load(SeqCst),
            sp = self.spawned.load(SeqCst),
            mb = self
                .mailbox
                .try_lock()
                .map_or("?".into(), |m| m.len().to_string()),
        )
    }
}

/// Two channels that senders and receivers use as one: (tx a, rx a, tx b, rx b).
type Pair = (Sender<Tok>, Receiver<Tok>, Sender<Tok>, Receiver<Tok>);

/// A channel token: its creation and drop are counted per id.
struct Tok {
    id: usize,
    sh: Arc<Shared>,
}

impl Tok {
    fn new(sh: &Arc<Shared>, id: usize) -> Tok {
        let prev = sh.tok_made[id].fetch_add(1, SeqCst);
        assert_eq!(prev, 0, "token {id} made twice");
        Tok { id, sh: sh.clone() }
    }

    /// Records its receipt and drops it.
    fn received(self) {
        let prev = self.sh.tok_recv[self.id].fetch_add(1, SeqCst);
        assert_eq!(prev, 0, "token {} received twice", self.id);
    }
}

impl Drop for Tok {
    fn drop(&mut self) {
        self.sh.tok_drops[self.id].fetch_add(1, SeqCst);
    }
}

/// Captured by every task's closure: counts the closure's drop.
struct ClosureMark {
    i: usize,
    sh: Arc<Shared>,
}

impl Drop for ClosureMark {
    fn drop(&mut self) {
        self.sh.closure_drops[self.i].fetch_add(1, SeqCst);
    }
}

/// Captured by a victim's child.
struct ChildMark(Arc<Shared>);

impl Drop for ChildMark {
    fn drop(&mut self) {
        self.0.victim_children_dropped.fetch_add(1, SeqCst);
    }
}

/// Cancels the coroutine when dropped (a victim's child, as the victim unwinds).
struct CancelOnDrop(Option<corun::JoinHandle<()>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.cancel();
        }
    }
}

/// The plan of one batch: a job per task, senders and receivers in matched pairs.
fn plan(seed: u64, start: usize, end: usize) -> Vec<Job> {
    let mut rng = Rng::new(mix64(seed ^ (start as u64).rotate_left(17)));
    let mut jobs = Vec::with_capacity(end - start);
    while start + jobs.len() < end {
        let room = end - start - jobs.len();
        let r = rng.below(1000);
        let job = match r {
            0..=179 => Job::Compute {
                yields: rng.below(4) as u8,
            },
            180..=229 => Job::Sleep {
                micros: rng.below(1500) as u16,
            },
            230..=309 => Job::Spawn {
                children: 1 + rng.below(3) as u8,
                nested: rng.chance(300),
            },
            310..=479 if room >= 2 => {
                let pair = rng.below(PAIRS.len() as u64) as u8;
                let hub = rng.below(2) as u8;
                let select = rng.chance(400);
                let how = rng.below(u64::from(RECV_WAYS)) as u8;
                // The receiver first half of the time, so either side may wait.
                let (s, r) = (Job::Send { pair, hub, select }, Job::Recv { pair, how });
                if rng.chance(500) {
                    jobs.push(s);
                    r
                } else {
                    jobs.push(r);
                    s
                }
            }
            480..=579 => Job::Lock {
                yield_inside: rng.chance(300),
            },
            580..=609 => Job::Write,
            610..=659 => Job::Read,
            660..=699 => Job::Sem,
            700..=739 => Job::CondTake,
            740..=769 => Job::Panic {
                hold_lock: rng.chance(500),
                real: rng.chance(1),
            },
            770..=829 => Job::Scoped {
                children: 1 + rng.below(4) as u8,
            },
            830..=869 => Job::Victim {
                how: rng.below(u64::from(VICTIM_WAYS)) as u8,
            },
            870..=949 => Job::Racer {
                yields: rng.below(4) as u8,
                cancel_after: rng.below(4) as u8,
            },
            950..=999 => Job::PipeSend,
            _ => Job::Compute { yields: 0 },
        };
        jobs.push(job);
    }
    jobs
}

/// What a job's join must give (victims and racers are checked separately).
fn expected(sh: &Shared, i: usize, job: Job) -> Outcome {
    let h = sh.h(i);
    match job {
        Job::Spawn { children, nested } => {
            let mut v = h;
            for j in 0..u64::from(children) {
                v = v.wrapping_add(child_value(h, j, nested && j == 0));
            }
            Outcome::Value(v)
        }
        Job::Scoped { children } => {
            let mut v = h;
            for j in 0..u64::from(children) {
                v = v.wrapping_add(mix64(h ^ j));
            }
            Outcome::Value(v)
        }
        Job::Panic { .. } => Outcome::Panicked(i as u64),
        Job::Victim { .. } => Outcome::Cancelled,
        _ => Outcome::Value(h),
    }
}

fn child_value(h: u64, j: u64, nested: bool) -> u64 {
    let v = mix64(h.wrapping_add(j));
    if nested {
        v ^ mix64(v)
    } else {
        v
    }
}

/// The per-batch objects that victims wait on and the pipeline.
struct BatchEnv {
    _never_tx: Sender<Tok>,
    _never_rx: Receiver<Tok>,
    _never_rx2: Receiver<Tok>,
    _never_tx2: Sender<Tok>,
    _gate: Arc<Mutex<()>>,
    _zero: Arc<Semaphore>,
}

/// Runs task `i`'s job; its return value (or panic) is what its join gives.
fn run_job(sh: &Arc<Shared>, i: usize, job: Job, env: &BatchEnvShare) -> u64 {
    let prev = sh.ran[i].fetch_add(1, SeqCst);
    assert_eq!(prev, 0, "task {i} ({job:?}) ran twice");
    let h = sh.h(i);
    let value = match job {
        Job::Compute { yields } => {
            for _ in 0..yields {
                corun::yield_now();
            }
            h
        }
        Job::Sleep { micros } => {
            corun::sleep(Duration::from_micros(u64::from(micros)));
            h
        }
        Job::Spawn { children, nested } => {
            let hs: Vec<_> = (0..u64::from(children))
                .map(|j| {
                    let sh2 = sh.clone();
                    let nest = nested && j == 0;
                    sh.spawned.fetch_add(1, SeqCst);
                    corun::go!(move || {
                        corun::yield_now();
                        let v = mix64(h.wrapping_add(j));
                        if nest {
                            sh2.spawned.fetch_add(1, SeqCst);
                            let g = corun::go!(move || mix64(v));
                            v ^ g.join().unwrap()
                        } else {
                            v
                        }
                    })
                })
                .collect();
            let mut v = h;
            for c in hs {
                v = v.wrapping_add(c.join().expect("a child failed"));
            }
            v
        }
        Job::Send { pair, hub, select } => {
            let (ta, _, tb, _) = &sh.pairs[pair as usize];
            let tok = Tok::new(sh, 4 * i);
            if select {
                // Either hub; a token not sent comes back in the error.
                // The losing arm's token is dropped unsent (counted by its drop).
                let t2 = Tok::new(sh, 4 * i + 1);
                corun::select! {
                    send(ta, tok) -> r => r.map_err(|_| ()).expect("pair closed"),
                    send(tb, t2) -> r => r.map_err(|_| ()).expect("pair closed"),
                }
            } else if hub == 0 {
                ta.send(tok).map_err(|_| ()).expect("pair closed");
            } else {
                tb.send(tok).map_err(|_| ()).expect("pair closed");
            }
            h
        }
        Job::Recv { pair, how } => {
            let (_, ra, _, rb) = &sh.pairs[pair as usize];
            let tok = match how {
                0 => corun::select! {
                    recv(ra) -> t => t.expect("pair closed"),
                    recv(rb) -> t => t.expect("pair closed"),
                },
                1 => loop {
                    // Short timeouts: most expire and go around again.
                    let t = corun::select! {
                        recv(ra) -> t => Some(t.expect("pair closed")),
                        recv(rb) -> t => Some(t.expect("pair closed")),
                        default(Duration::from_micros(200)) => None,
                    };
                    if let Some(t) = t {
                        break t;
                    }
                },
                2 => loop {
                    if let Ok(t) = ra.try_recv() {
                        break t;
                    }
                    if let Ok(t) = rb.try_recv() {
                        break t;
                    }
                    corun::yield_now();
                },
                _ => loop {
                    if let Ok(t) = ra.recv_timeout(Duration::from_micros(300)) {
                        break t;
                    }
                    if let Ok(t) = rb.recv_timeout(Duration::from_micros(100)) {
                        break t;
                    }
                },
            };
            if sh.inject.as_deref() == Some("lose") && !sh.lost_one.swap(true, SeqCst) {
                std::mem::forget(tok); // the deliberate bug: a token vanishes
            } else {
                tok.received();
            }
            h
        }
        Job::Lock { yield_inside } => {
            let mut g = sh.mutex.lock();
            *g = g.wrapping_add(h);
            if yield_inside {
                corun::yield_now();
            }
            h
        }
        Job::Write => {
            let mut g = sh.rw.write();
            g.0 = g.0.wrapping_add(h);
            corun::yield_now();
            g.1 = g.0.wrapping_mul(3);
            h
        }
        Job::Read => {
            let g = sh.rw.read();
            let (a, b) = *g;
            corun::yield_now();
            assert_eq!(b, a.wrapping_mul(3), "a reader saw a half-done write");
            assert_eq!(*g, (a, b), "a write happened under a read lock");
            h
        }
        Job::Sem => {
            let _p = sh.sem.acquire();
            let n = sh.sem_inside.fetch_add(1, SeqCst) + 1;
            sh.sem_max.fetch_max(n, SeqCst);
            corun::yield_now();
            sh.sem_inside.fetch_sub(1, SeqCst);
            h
        }
        Job::CondTake => {
            let mut g = sh.mailbox.lock();
            while g.is_empty() {
                sh.mail_cv.wait(&mut g);
            }
            let item = g.pop_front().unwrap() as usize;
            drop(g);
            let prev = sh.mail_taken[item].fetch_add(1, SeqCst);
            assert_eq!(prev, 0, "mailbox item {item} taken twice");
            h
        }
        Job::Panic { hold_lock, real } => {
            if hold_lock {
                let mut g = sh.mutex.lock();
                *g = g.wrapping_add(h);
                corun::yield_now();
                raise(i, real);
            }
            corun::yield_now();
            raise(i, real)
        }
        Job::Scoped { children } => {
            let mut slots = vec![0u64; usize::from(children)];
            corun::scope(|s| {
                for (j, slot) in slots.iter_mut().enumerate() {
                    sh.spawned.fetch_add(1, SeqCst);
                    s.spawn(move || {
                        corun::yield_now();
                        *slot = mix64(h ^ j as u64);
                    });
                }
            });
            slots.iter().fold(h, |a, &b| a.wrapping_add(b))
        }
        Job::Victim { how } => {
            victim(sh, i, how, env);
            unreachable!("a victim returned from its wait")
        }
        Job::Racer { yields, .. } => {
            for _ in 0..yields {
                corun::yield_now();
            }
            if yields == 3 {
                corun::sleep(Duration::from_micros(50));
            }
            h
        }
        Job::PipeSend => {
            for k in 0..PIPE_TOKENS {
                let t = Tok::new(sh, 4 * i + 1 + k);
                env.pipe_tx.send(t).map_err(|_| ()).expect("pipe closed");
            }
            h
        }
    };
    // No cancellation point after this: "finished" is marked iff the join is Ok.
    sh.finished[i].fetch_add(1, SeqCst);
    value
}

fn raise(i: usize, real: bool) -> ! {
    if real {
        // A few real panics go through the panic hook (it names the coroutine).
        panic!("stress: planned panic of task {i}");
    }
    std::panic::resume_unwind(Box::new(PanicTok(i as u64)))
}

/// What victims share of their batch (cloned into each victim's closure).
#[derive(Clone)]
struct BatchEnvShare {
    never_rx: Receiver<Tok>,
    never_rx2: Receiver<Tok>,
    never_tx: Sender<Tok>,
    gate: Arc<Mutex<()>>,
    zero: Arc<Semaphore>,
    pipe_tx: Sender<Tok>,
}

/// Waits forever (until cancelled), in one of several ways.
fn victim(sh: &Arc<Shared>, i: usize, how: u8, env: &BatchEnvShare) {
    match how {
        0 => loop {
            corun::park();
        },
        1 => corun::sleep(Duration::from_secs(3600)),
        2 => {
            let _ = env.never_rx.recv();
        }
        3 => {
            let _ = env.gate.lock();
        }
        4 => {
            corun::select! {
                recv(env.never_rx) -> _ => (),
                recv(env.never_rx2) -> _ => (),
            }
        }
        5 => {
            let _p = env.zero.acquire();
        }
        6 => {
            // Joins a child that waits forever; the child is cancelled as we unwind.
            sh.spawned.fetch_add(1, SeqCst);
            sh.victim_children.fetch_add(1, SeqCst);
            let mark = ChildMark(sh.clone());
            let child = corun::go!(move || {
                let _mark = mark;
                loop {
                    corun::park();
                }
            });
            let _guard = CancelOnDrop(Some(child));
            loop {
                corun::park_timeout(Duration::from_millis(50));
            }
        }
        _ => {
            // A sender blocked on a rendezvous channel nobody receives from.
            let _ = env.never_tx.send(Tok::new(sh, 4 * i));
        }
    }
    loop {
        corun::park(); // unreachable unless a wait returned: the join check reports it
    }
}

fn outcome_of(r: std::thread::Result<u64>) -> Outcome {
    match r {
        Ok(v) => Outcome::Value(v),
        Err(e) => {
            if e.downcast_ref::<corun::Cancelled>().is_some() {
                Outcome::Cancelled
            } else if let Some(p) = e.downcast_ref::<PanicTok>() {
                Outcome::Panicked(p.0)
            } else if let Some(s) = e.downcast_ref::<String>() {
                match s.strip_prefix("stress: planned panic of task ") {
                    Some(n) => Outcome::Panicked(n.parse().unwrap()),
                    None => panic!("unexpected panic in a task: {s}"),
                }
            } else if let Some(s) = e.downcast_ref::<&str>() {
                panic!("unexpected panic in a task: {s}")
            } else {
                panic!("unexpected panic payload in a task")
            }
        }
    }
}

/// Where a spawner runs: a coroutine spawns on its own runtime, a thread through
/// the handle.
#[derive(Clone)]
enum Spawner {
    Coroutine,
    Thread(corun::Handle),
}

impl Spawner {
    fn spawn<F: FnOnce() -> u64 + Send + 'static>(
        &self,
        rng: &mut Rng,
        f: F,
    ) -> corun::JoinHandle<u64> {
        // Now and then a named coroutine or one with a stack of its own.
        let b = match rng.below(50) {
            0 => corun::Builder::new().name("stress-named"),
            1 => corun::Builder::new().stack_size(64 * 1024),
            _ => corun::Builder::new(),
        };
        match self {
            Spawner::Coroutine => b.spawn(f),
            Spawner::Thread(h) => b.spawn_on(h, f),
        }
        .expect("spawn failed")
    }
}

fn run_batch(sh: &Arc<Shared>, sp: &Spawner, start: usize, end: usize) {
    let jobs = plan(sh.seed, start, end);
    let mut rng = Rng::new(mix64(sh.seed ^ 0x5eed ^ start as u64));
    let (never_tx, never_rx) = chan::bounded::<Tok>(0);
    let (never_tx2, never_rx2) = chan::bounded::<Tok>(0);
    let gate = Arc::new(Mutex::new(()));
    let gate_guard = gate.lock();
    let (pipe_tx, pipe_rx) = if rng.chance(500) {
        chan::bounded(2)
    } else {
        chan::unbounded()
    };
    let env = BatchEnvShare {
        never_rx: never_rx.clone(),
        never_rx2: never_rx2.clone(),
        never_tx: never_tx.clone(),
        gate: gate.clone(),
        zero: Arc::new(Semaphore::new(0)),
        pipe_tx: pipe_tx.clone(),
    };
    let keep = BatchEnv {
        _never_tx: never_tx,
        _never_rx: never_rx,
        _never_rx2: never_rx2,
        _never_tx2: never_tx2,
        _gate: gate.clone(),
        _zero: env.zero.clone(),
    };
    // The pipeline's consumer: counts until every sender is gone.
    let senders = jobs.iter().filter(|j| matches!(j, Job::PipeSend)).count();
    sh.spawned.fetch_add(1, SeqCst);
    let sh2 = sh.clone();
    let consumer = sp.spawn(&mut rng, move || {
        let mut n = 0u64;
        for t in pipe_rx.iter() {
            t.received();
            n += 1;
        }
        let _ = &sh2;
        n
    });

    let mut handles = Vec::with_capacity(jobs.len());
    for (k, &job) in jobs.iter().enumerate() {
        let i = start + k;
        let mark = ClosureMark { i, sh: sh.clone() };
        let sh2 = sh.clone();
        let env2 = env.clone();
        let hang = sh.inject.as_deref() == Some("hang") && k == jobs.len() / 2;
        sh.spawned.fetch_add(1, SeqCst);
        let h = sp.spawn(&mut rng, move || {
            let _mark = mark;
            if hang {
                // The deliberate bug: a wait nobody will end (a lost wake-up).
                loop {
                    corun::park();
                }
            }
            run_job(&sh2, i, job, &env2)
        });
        // Some racers are cancelled before they can start.
        if let Job::Racer {
            cancel_after: 0, ..
        } = job
        {
            h.cancel();
        }
        handles.push((i, job, h));
        if rng.chance(20) {
            corun::yield_now();
        }
    }
    drop(env);
    // The senders hold the pipe's other clones.
    drop(pipe_tx);
    // Items for the condition-variable takers of this batch.
    for (i, job, _) in &handles {
        if let Job::CondTake = job {
            let mut g = sh.mailbox.lock();
            g.push_back(*i as u64);
            drop(g);
            if rng.chance(200) {
                sh.mail_cv.notify_all();
            } else {
                sh.mail_cv.notify_one();
            }
        }
    }
    // Cancel the victims and the racers.
    for (_, job, h) in &handles {
        match job {
            Job::Victim { .. } => {
                h.cancel();
            }
            Job::Racer { cancel_after, .. } if *cancel_after > 0 => {
                for _ in 1..*cancel_after {
                    corun::yield_now();
                }
                h.cancel();
            }
            _ => {}
        }
    }
    // Join in order or in reverse.
    if rng.chance(500) {
        handles.reverse();
    }
    for (i, job, h) in handles {
        let got = outcome_of(h.join());
        let done = sh.finished[i].load(SeqCst);
        match (job, &got) {
            (Job::Racer { .. }, Outcome::Cancelled) => {
                assert_eq!(done, 0, "task {i}: a cancelled racer was marked finished")
            }
            (Job::Racer { .. }, Outcome::Value(v)) => {
                assert_eq!(*v, sh.h(i), "task {i} ({job:?}): wrong value");
                assert_eq!(done, 1, "task {i}: returned but not marked finished");
            }
            _ => {
                let want = expected(sh, i, job);
                assert_eq!(
                    got, want,
                    "task {i} ({job:?}): join gave {got:?}, plan says {want:?}"
                );
                let want_done = u8::from(matches!(want, Outcome::Value(_)));
                assert_eq!(done, want_done, "task {i} ({job:?}): finished mark {done}");
            }
        }
        let ran = sh.ran[i].load(SeqCst);
        assert!(ran <= 1, "task {i} ran {ran} times");
        if matches!(got, Outcome::Value(_) | Outcome::Panicked(_)) {
            assert_eq!(ran, 1, "task {i}: a result without a run");
        }
        match got {
            Outcome::Value(_) => sh.ok.fetch_add(1, SeqCst),
            Outcome::Panicked(_) => sh.panicked.fetch_add(1, SeqCst),
            Outcome::Cancelled => sh.cancelled.fetch_add(1, SeqCst),
        };
        sh.joined.fetch_add(1, SeqCst);
    }
    let piped = consumer.join().expect("the pipeline consumer failed");
    assert_eq!(
        piped,
        (senders * PIPE_TOKENS) as u64,
        "pipeline lost tokens"
    );
    drop(gate_guard);
    drop(keep);
    sh.batches.fetch_add(1, SeqCst);
}

/// One run of the mix; panics on any accounting error.
pub fn run(cfg: &Config) {
    let t0 = Instant::now();
    say(&format!(
        "stress mix: seed {} (reproduce: CORUN_STRESS_SEED={}), {} tasks, {} workers",
        cfg.seed, cfg.seed, cfg.tasks, cfg.workers
    ));
    let rt = corun::Runtime::builder()
        .workers(cfg.workers)
        .build()
        .expect("building the runtime");
    let sh = Arc::new(Shared::new(cfg));
    let watchdog = {
        let (sh, cfg2) = (sh.clone(), cfg.clone());
        Watchdog::start(
            format!("the stress mix (seed {})", cfg.seed),
            cfg.watchdog,
            Some(rt.handle().clone()),
            move || sh.report(&cfg2),
        )
    };

    // Batches are dealt to spawners round robin.
    let spawners = cfg.co_spawners + cfg.thread_spawners;
    let batches: Vec<(usize, usize)> = (0..cfg.tasks)
        .step_by(cfg.batch)
        .map(|s| (s, (s + cfg.batch).min(cfg.tasks)))
        .collect();
    let mine = |k: usize| -> Vec<(usize, usize)> {
        batches.iter().copied().skip(k).step_by(spawners).collect()
    };
    let mut co = Vec::new();
    for k in 0..cfg.co_spawners {
        let (sh, my) = (sh.clone(), mine(k));
        sh.spawned.fetch_add(1, SeqCst);
        co.push(rt.spawn(move || {
            for (s, e) in my {
                run_batch(&sh, &Spawner::Coroutine, s, e);
            }
            sh.spawners_done.fetch_add(1, SeqCst);
        }));
    }
    let mut threads = Vec::new();
    for k in cfg.co_spawners..spawners {
        let (sh, my, h) = (sh.clone(), mine(k), rt.handle().clone());
        threads.push(std::thread::spawn(move || {
            for (s, e) in my {
                run_batch(&sh, &Spawner::Thread(h.clone()), s, e);
            }
            sh.spawners_done.fetch_add(1, SeqCst);
        }));
    }
    let mut failures = Vec::new();
    for h in co {
        if let Err(e) = h.join() {
            failures.push(panic_text(&*e));
        }
    }
    for t in threads {
        if let Err(e) = t.join() {
            failures.push(panic_text(&*e));
        }
    }
    if !failures.is_empty() {
        drop(watchdog);
        panic!(
            "stress mix failed (reproduce: CORUN_STRESS_SEED={}): {}",
            cfg.seed,
            failures.join("; ")
        );
    }
    // Victims' children end asynchronously after their cancel; wait for the runtime
    // to drain (the watchdog bounds this too).
    let m = loop {
        let m = rt.metrics();
        if m.live == 0 {
            break m;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    drop(watchdog);
    check_totals(&sh, cfg, &m);
    drop(rt);
    say(&format!(
        "stress mix: seed {} passed in {:.1} s: {} tasks ({} ok, {} panicked, {} cancelled), \
         {} coroutines spawned in all, {} switches",
        cfg.seed,
        t0.elapsed().as_secs_f64(),
        cfg.tasks,
        sh.ok.load(SeqCst),
        sh.panicked.load(SeqCst),
        sh.cancelled.load(SeqCst),
        sh.spawned.load(SeqCst),
        m.workers.iter().map(|w| w.switches).sum::<u64>(),
    ));
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into())
}

/// The checks that need every task joined.
fn check_totals(sh: &Shared, cfg: &Config, m: &corun::Metrics) {
    let seed = cfg.seed;
    let n = cfg.tasks;
    assert_eq!(
        sh.joined.load(SeqCst),
        n as u64,
        "seed {seed}: tasks joined"
    );
    for i in 0..n {
        let d = sh.closure_drops[i].load(SeqCst);
        assert_eq!(d, 1, "seed {seed}: task {i}'s closure dropped {d} times");
    }
    // Tokens: each made once is dropped once; received ones once.
    let mut made = 0u64;
    let mut received = 0u64;
    for id in 0..4 * n {
        let (mk, rc, dr) = (
            sh.tok_made[id].load(SeqCst),
            sh.tok_recv[id].load(SeqCst),
            sh.tok_drops[id].load(SeqCst),
        );
        assert!(
            mk <= 1 && rc <= mk,
            "seed {seed}: token {id} made {mk}, received {rc}"
        );
        assert_eq!(
            dr, mk,
            "seed {seed}: token {id} made {mk} times, dropped {dr} times"
        );
        made += u64::from(mk);
        received += u64::from(rc);
    }
    // Every receiving task got exactly one token, every pipe token arrived, and a
    // select-send delivered one of its two.
    let mut recv_tasks = 0u64;
    let mut pipe_tokens = 0u64;
    let mut mutex_sum = 0u64;
    let mut rw_sum = 0u64;
    let mut takers = 0usize;
    for start in (0..n).step_by(cfg.batch) {
        let end = (start + cfg.batch).min(n);
        for (k, job) in plan(seed, start, end).into_iter().enumerate() {
            let i = start + k;
            match job {
                Job::Recv { .. } => recv_tasks += 1,
                Job::PipeSend => pipe_tokens += PIPE_TOKENS as u64,
                Job::Lock { .. }
                | Job::Panic {
                    hold_lock: true, ..
                } => mutex_sum = mutex_sum.wrapping_add(sh.h(i)),
                Job::Write => rw_sum = rw_sum.wrapping_add(sh.h(i)),
                Job::CondTake => {
                    takers += 1;
                    let t = sh.mail_taken[i].load(SeqCst);
                    assert_eq!(t, 1, "seed {seed}: mailbox item {i} taken {t} times");
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        received,
        recv_tasks + pipe_tokens,
        "seed {seed}: tokens received vs receiving tasks + pipeline tokens"
    );
    assert!(made >= received);
    assert_eq!(*sh.mutex.lock(), mutex_sum, "seed {seed}: the mutex's sum");
    let rw = *sh.rw.read();
    assert_eq!(
        rw,
        (rw_sum, rw_sum.wrapping_mul(3)),
        "seed {seed}: the rwlock's sums"
    );
    assert!(
        sh.mailbox.lock().is_empty(),
        "seed {seed}: mailbox items left over"
    );
    assert!(takers <= n);
    let max = sh.sem_max.load(SeqCst);
    assert!(
        max <= PERMITS,
        "seed {seed}: {max} inside a semaphore of {PERMITS}"
    );
    let vc = sh.victim_children.load(SeqCst);
    let vcd = sh.victim_children_dropped.load(SeqCst);
    assert_eq!(vc, vcd, "seed {seed}: victims' children not unwound");
    // The runtime's own count agrees with ours.
    let spawned = sh.spawned.load(SeqCst);
    let counted: u64 = m.workers.iter().map(|w| w.spawned).sum::<u64>() + m.spawned_outside;
    let finished: u64 = m.workers.iter().map(|w| w.finished).sum();
    assert_eq!(
        counted, spawned,
        "seed {seed}: spawns the runtime counted: {m:?}"
    );
    assert_eq!(
        finished, spawned,
        "seed {seed}: ends the runtime counted: {m:?}"
    );
    assert_eq!(m.live, 0);
}
