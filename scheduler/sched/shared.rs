//! The state of one runtime that every worker and every waker can reach.

use super::context;
use super::counters::Counters;
use super::idle::Idle;
use super::inject::Inject;
use super::registry::{Registry, Started};
use super::sleeper::Sleeper;
use super::task::{G, UNSTARTED};
use crate::coroutine::stack::StackPool;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// What other threads may touch of one worker.
pub(crate) struct Remote {
    /// Started coroutines of this worker woken by other threads.
    inbox: Mutex<Vec<G>>,
    /// Set under the inbox lock when this M exits: nothing is placed here after.
    inbox_closed: AtomicBool,
    pub(crate) inbox_len: AtomicUsize,
    /// Set by sysmon for the running coroutine to yield at its next budget point
    /// (`budget.rs`): [`POKE_TIMERS`] (a timer of this M is due), [`POKE_PREEMPT`]
    /// (it has run 10 ms). The M clears it when it switches.
    pub(super) poke: AtomicU8,
    /// This M's earliest timer, in nanoseconds since the runtime's epoch (`u64::MAX`:
    /// none), for sysmon to see that one is due while the M is busy.
    pub(super) next_timer: AtomicU64,
    /// The M's thread, as sysmon samples it (`thread_clock.rs`).
    pub(super) thread: super::thread_clock::ThreadClock,
    pub(super) sleeper: Sleeper,
    /// This worker's IO driver (the netpoller), as other threads reach it.
    pub(crate) io: Arc<dyn super::driver::DriverHandle>,
    pub(crate) counters: Counters,
    /// This M's claim on its P: see `handoff.rs`.
    pub(super) claim: super::handoff::Claim,
    /// Started coroutines bound to this worker, alive (see `registry.rs`).
    pub(crate) registry: Registry,
}

impl Remote {
    pub(crate) fn new(io: Arc<dyn super::driver::DriverHandle>) -> Remote {
        Remote {
            inbox: Mutex::new(Vec::new()),
            inbox_closed: AtomicBool::new(false),
            inbox_len: AtomicUsize::new(0),
            poke: AtomicU8::new(0),
            next_timer: AtomicU64::new(u64::MAX),
            thread: super::thread_clock::ThreadClock::new(),
            sleeper: Sleeper::new(),
            io,
            claim: super::handoff::Claim::new(),
            counters: Counters::default(),
            registry: Registry::default(),
        }
    }

    /// How loaded this M is, for placing a connection: its started coroutines
    /// alive, and those waiting in its inbox (woken, or placed and not started).
    pub(super) fn load(&self) -> usize {
        self.registry.len() + self.inbox_len.load(Ordering::Relaxed)
    }

    /// The M is about to exit: closes the inbox to placements, unless something
    /// arrived meanwhile (false: the M must take it in first).
    pub(super) fn close_inbox(&self) -> bool {
        let q = self.inbox.lock();
        if !q.is_empty() {
            return false;
        }
        self.inbox_closed.store(true, Ordering::Relaxed);
        true
    }

    /// A dedicated slot is taken again (`dedicated.rs`): placements are welcome.
    pub(super) fn reopen_inbox(&self) {
        let _q = self.inbox.lock();
        self.inbox_closed.store(false, Ordering::Relaxed);
    }

    pub(super) fn take_inbox(&self, into: &mut std::collections::VecDeque<G>) {
        let mut q = self.inbox.lock();
        self.inbox_len.store(0, Ordering::Relaxed);
        into.extend(q.drain(..));
    }
}

/// [`Remote::poke`]: a timer of the M is due.
pub(super) const POKE_TIMERS: u8 = 1;
/// [`Remote::poke`]: the running coroutine has run for sysmon's hog threshold.
pub(super) const POKE_PREEMPT: u8 = 2;
/// [`Remote::poke`]: an M with coroutines of its own waits for a P; give this one
/// back at the next switch (Ps go round the Ms that need them).
pub(super) const POKE_HANDBACK: u8 = 4;

impl Remote {
    /// Whether the running coroutine should yield at its next budget point: sysmon
    /// poked this M, or a coroutine woken by another thread waits in its inbox (it
    /// goes ahead of the ready ones, and should not wait a whole budget).
    #[inline]
    pub(super) fn should_yield(&self) -> bool {
        self.poke.load(Ordering::Relaxed) != 0 || self.inbox_len.load(Ordering::Relaxed) != 0
    }
}

/// What the core asks of observability, which it does not import: set by the
/// builder, called by sysmon and deadlock detection.
pub(crate) struct Observer {
    /// Go's goroutine dump of a runtime (`observe::dump`).
    pub(crate) dump: fn(&Shared) -> String,
    /// How many SIGQUITs have arrived so far: sysmon prints a dump for each new one.
    pub(crate) sigquit_generation: fn() -> u64,
}

/// The state of one runtime that every worker and every waker can reach. Always in
/// an `Arc` (made by the builder): `schedule_woken` relies on it.
pub(crate) struct Shared {
    pub(crate) observer: Observer,
    /// One per M (the workers, then room for the extra Ms).
    pub(crate) remotes: Box<[Remote]>,
    /// The Ps, one per worker (Go's `allp`); `ps` says who holds which.
    pub(crate) allp: Box<[super::p::P]>,
    pub(crate) inject: Inject<G>,
    pub(crate) idle: Idle,
    pub(crate) stacks: StackPool,
    pub(crate) shutdown: AtomicBool,
    /// Coroutines spawned from outside the runtime (the workers count their own).
    pub(crate) spawned_outside: AtomicU64,
    /// Started `migratable` coroutines, which no single worker owns.
    pub(crate) migratable: Mutex<HashMap<u64, Started>>,
    /// When the runtime started: busy times and schedtrace count from here.
    pub(crate) epoch: std::time::Instant,
    /// Whether coroutines' stack use is measured (`RuntimeBuilder::stack_stats`).
    pub(crate) stack_stats: bool,
    /// The deepest stack use of a finished coroutine, when `stack_stats`.
    pub(crate) stack_high_water_max: AtomicUsize,
    /// Whether the monitor thread runs (it counts among the runtime's threads).
    pub(crate) monitor: AtomicBool,
    /// Which M holds which P.
    pub(crate) ps: super::handoff::Ps,
    /// Ps sysmon took from stuck Ms.
    pub(crate) handoffs: AtomicU64,
    /// Ms started so far: the workers, then extra Ms sysmon started.
    pub(crate) ms_started: AtomicUsize,
    /// The IO drivers of the extra Ms not started yet (index - workers).
    pub(crate) spares: Mutex<Vec<Option<Box<dyn super::driver::Driver>>>>,
    /// The extra Ms' threads, joined when the runtime is dropped.
    pub(crate) spare_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Timers of `migratable` coroutines: any M, or sysmon, fires them.
    pub(crate) portable_timers: Mutex<crate::sched::timers::Timers>,
    pub(crate) portable_timer_count: AtomicUsize,
    pub(crate) sysmon_sleeper: Sleeper,
    /// The runtime's name, for its threads' names.
    pub(crate) name: String,
    /// The number of workers, and of Ps (`remotes` also holds the extra Ms' slots).
    pub(crate) workers: usize,
    /// Coroutines parked on a corun primitive with no timeout (see `deadlock.rs`).
    pub(crate) parked_untimed: AtomicUsize,
    pub(crate) deadlock: super::deadlock::Deadlock,
    /// Where sysmon's warnings go, and how long a coroutine must have held its worker
    /// before one is given.
    pub(crate) warnings: super::warnings::Warnings,
    pub(crate) warn_after: std::time::Duration,
    /// Workers held past the request to yield, by what held them (sysmon's verdict).
    pub(crate) stalls: Stalls,
    /// Threads of dedicated coroutines (`dedicated.rs`).
    pub(crate) dedicated: super::dedicated::Dedicated,
    /// The scheduler trace, when one is recorded (`CORUN_TRACE`, `trace.rs`).
    pub(crate) trace: Option<Arc<super::trace::Trace>>,
    /// A client's state kept per runtime and made at its first use (the tokio
    /// bridge's reactor, `await_future`): `Runtime::drop` shuts it down once every
    /// coroutine has ended.
    pub(crate) attached: std::sync::OnceLock<Box<dyn Attached>>,
}

/// See [`Shared::attached`]: the core stores it and says when to stop, nothing more.
pub(crate) trait Attached: Send + Sync {
    /// Stops what it runs; called once, after the runtime's coroutines have ended.
    fn shutdown(&self);
    /// For the client to find its own type again.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio bridge
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Counts of workers that did not yield when asked, by cause (`thread_clock.rs`).
#[derive(Default)]
pub(crate) struct Stalls {
    pub(crate) computing: AtomicU64,
    pub(crate) blocked: AtomicU64,
    pub(crate) unknown: AtomicU64,
    pub(crate) descheduled: AtomicU64,
}

impl Shared {
    /// Queues a new coroutine: on the spawning worker if it is one of ours, else on
    /// the global injector. Gives it back if the runtime is shutting down.
    pub(crate) fn spawn(&self, g: G) -> Result<(), G> {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(g);
        }
        let mut g = Some(g);
        let here = context::with_worker(|w| {
            if w.owned_by(self) {
                w.push_spawned(g.take().expect("taken once"));
            }
        });
        let Some(g) = g else {
            debug_assert!(here.is_some());
            return Ok(());
        };
        let id = g.header.id;
        self.inject.push(g)?;
        if let Some(t) = &self.trace {
            let track = self.track_of_caller(t);
            t.instant(
                track,
                super::trace::Kind::Spawn,
                id,
                super::trace::TO_INJECTOR,
                0,
            );
        }
        self.spawned_outside.fetch_add(1, Ordering::Relaxed);
        self.notify_parked();
        Ok(())
    }

    /// Queues a woken coroutine (its state is already QUEUED). A started coroutine
    /// goes back to its own worker: `runnext` if the waker is a coroutine on that
    /// worker, else that worker's inbox.
    ///
    /// It takes the runtime as the raw pointer of `g`'s header, not `&self`: once
    /// `g` is queued it may run to its end and the runtime be dropped while a waker
    /// from outside still wakes the worker. Such a waker holds a reference of its own
    /// meanwhile, and the last one may then be dropped here, which must not happen
    /// under a reference that is a live argument of this function.
    ///
    /// # Safety
    /// `g` was just moved from PARKED to QUEUED by the caller (so it is unfinished,
    /// and its runtime, `g.header.rt`, is alive: see `park::unpark`).
    pub(super) unsafe fn schedule_woken(g: G) {
        let rt = g.header.rt;
        let home = g.header.home.load(Ordering::Relaxed);
        debug_assert_ne!(home, UNSTARTED);
        // On a worker of this runtime: its home worker (runnext), or another one
        // (whose own reference keeps this state alive while it works here).
        let here = context::with_worker(|w| {
            std::ptr::eq(Arc::as_ptr(&w.shared), rt)
                .then(|| g.header.migratable && !w.is_dedicated() || w.index == home as usize)
        })
        .flatten();
        if here == Some(true) {
            context::with_worker(|w| w.push_woken(g));
            return;
        }
        // Any other thread holds no reference to the runtime: take one until done.
        // SAFETY: `rt` was made by `Arc::as_ptr` (`Builder::make`) of the `Arc` every
        // `Shared` lives in (the pointer `Arc::into_raw` gives too), and it is alive
        // now (the caller's contract): its count is not zero.
        let alive = here.is_none().then(|| unsafe {
            Arc::increment_strong_count(rt);
            Arc::from_raw(rt)
        });
        let shared: &Shared = match &alive {
            Some(a) => a,
            // SAFETY: alive as above, and kept so by this worker's own reference
            // until the end of this function; a local borrow, not an argument.
            None => unsafe { &*rt },
        };
        if g.header.migratable {
            // Any M may run it: its own may be stuck.
            match shared.inject.push(g) {
                Ok(()) => shared.notify_parked(),
                Err(g) => shared.push_inbox(home as usize, g),
            }
        } else {
            shared.push_inbox(home as usize, g);
        }
        // `alive`, possibly the last reference, drops here, after every use.
    }

    /// Queues `g`, a new coroutine, to start on worker `idx` (see `placement.rs`),
    /// waking it if `wake`. Gives it back if that M has exited (shutdown).
    pub(super) fn place(&self, idx: usize, g: G, wake: bool) -> Result<(), G> {
        let r = &self.remotes[idx];
        {
            let mut q = r.inbox.lock();
            if r.inbox_closed.load(Ordering::Relaxed) {
                return Err(g);
            }
            q.push(g);
            r.inbox_len.store(q.len(), Ordering::Release);
        }
        if wake {
            self.unpark_worker(idx);
        }
        Ok(())
    }

    /// Takes the unstarted coroutines left in any queue: a spawn that saw the
    /// runtime running may have queued one after the workers emptied the injector
    /// or placed one on a worker that had stopped, and a P taken from a stuck M may
    /// still hold some. Started (migratable) ones are left to `take_alive`.
    ///
    /// # Safety
    /// Every M has been joined (`Runtime::drop`): no thread holds a P.
    pub(crate) unsafe fn take_queued_unstarted(&self) -> Vec<G> {
        let mut out: Vec<G> = std::iter::from_fn(|| self.inject.pop()).collect();
        for p in self.allp.iter() {
            // SAFETY: the caller's contract.
            out.extend(unsafe { p.drain() });
        }
        out.retain(|g| !g.header.is_started());
        for r in self.remotes.iter() {
            let mut q = r.inbox.lock();
            let (unstarted, started) = q.drain(..).partition(|g| !g.header.is_started());
            *q = started;
            r.inbox_len.store(q.len(), Ordering::Relaxed);
            out.extend::<Vec<G>>(unstarted);
        }
        out
    }

    fn push_inbox(&self, idx: usize, g: G) {
        if let Some(t) = &self.trace {
            let track = self.track_of_caller(t);
            t.instant(track, super::trace::Kind::Wake, g.header.id, idx as u32, 0);
        }
        let r = &self.remotes[idx];
        {
            let mut q = r.inbox.lock();
            q.push(g);
            r.inbox_len.store(q.len(), Ordering::Release);
        }
        self.unpark_worker(idx);
    }

    /// The trace track of the calling thread: its M's, or the one of other threads.
    #[cold]
    fn track_of_caller(&self, t: &super::trace::Trace) -> usize {
        context::with_worker(|w| w.owned_by(self).then_some(w.index))
            .flatten()
            .unwrap_or_else(|| t.other_track())
    }

    /// Wakes worker `i` wherever it sleeps (its condition variable or the poller).
    pub(crate) fn unpark_worker(&self, i: usize) {
        let r = &self.remotes[i];
        r.sleeper.unpark(|| r.io.wake());
    }

    /// Wakes a sleeping worker to look for portable work, if one is needed.
    pub(super) fn notify_parked(&self) {
        if let Some(i) = self.idle.worker_to_notify() {
            self.unpark_worker(i);
        }
    }

    /// Takes the started coroutines still alive out of the registries and the
    /// migratable set (none, unless they could not be unwound at shutdown).
    pub(crate) fn take_alive(&self) -> Vec<G> {
        let mut all: Vec<G> = self.migratable.lock().drain().map(|(_, e)| e.g).collect();
        for r in self.remotes.iter() {
            all.extend(r.registry.lock().drain(..).map(|e| e.g));
        }
        all
    }

    /// Ms started so far.
    pub(crate) fn ms_started(&self) -> usize {
        self.ms_started.load(Ordering::Acquire)
    }

    /// Every M that may hold coroutines: the workers, the extra Ms started so far
    /// (`ms_started`), then every dedicated slot (a free one holds none).
    pub(crate) fn all_ms(&self) -> impl Iterator<Item = &Remote> {
        let base = self.dedicated.base;
        self.remotes[..self.ms_started()]
            .iter()
            .chain(&self.remotes[base..])
    }

    /// Starts the next extra M (sysmon, when every M is stuck); false if the cap is
    /// reached, the runtime is shutting down, or the thread could not be made.
    pub(super) fn start_spare(self: &Arc<Self>) -> bool {
        let mut spares = self.spares.lock();
        if self.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        let Some(slot) = spares.iter().position(Option::is_some) else {
            return false;
        };
        let poller = spares[slot].take().expect("checked above");
        // The extra Ms come right after the workers (dedicated slots follow them).
        let index = self.workers + slot;
        let sh = self.clone();
        let t = std::thread::Builder::new()
            .name(format!("{}-worker-{index}", self.name))
            .spawn(move || super::worker::run(sh, index, poller));
        match t {
            Ok(t) => {
                self.idle.add_m();
                self.ms_started.fetch_add(1, Ordering::AcqRel);
                self.spare_threads.lock().push(t);
                true
            }
            Err(e) => {
                // The closure (and its poller) is gone with the failed
                // spawn; this slot stays unused.
                eprintln!("corun: sysmon could not start an extra worker thread: {e}");
                false
            }
        }
    }

    /// Arms a timer for a `migratable` coroutine.
    pub(super) fn add_portable_timer(&self, deadline: std::time::Instant, g: G) {
        let mut t = self.portable_timers.lock();
        t.add(deadline, g);
        self.portable_timer_count.store(t.len(), Ordering::Relaxed);
    }

    pub(super) fn next_portable_deadline(&self) -> Option<std::time::Instant> {
        if self.portable_timer_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.portable_timers.lock().next_deadline()
    }

    /// Fires the due timers of `migratable` coroutines; returns how many.
    pub(super) fn fire_portable_timers(&self, now: std::time::Instant) -> usize {
        if self.portable_timer_count.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut due = Vec::new();
        {
            let Some(mut t) = self.portable_timers.try_lock() else {
                return 0;
            };
            t.expire(now, |g, _| due.push(g));
            self.portable_timer_count.store(t.len(), Ordering::Relaxed);
        }
        let n = due.len();
        for g in due {
            super::park::unpark(&g);
        }
        n
    }

    /// True if some queue other workers can take from holds work.
    pub(super) fn has_portable_work(&self) -> bool {
        !self.inject.is_empty() || self.allp.iter().any(|p| !p.steal.is_empty())
    }
}
