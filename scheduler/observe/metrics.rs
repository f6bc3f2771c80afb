//! [`Metrics`]: snapshots of the scheduler's counters (`sched::counters`).

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::sched::counters::Counters;
use crate::sched::shared::Shared;
use std::time::{Duration, Instant};

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    /// Coroutines spawned by coroutines running on this worker.
    pub spawned: u64,
    /// Coroutines this worker started running (it owns them for life).
    pub started: u64,
    /// Coroutines that finished on this worker.
    pub finished: u64,
    /// Switches into a coroutine.
    pub switches: u64,
    /// Unstarted coroutines this worker took from other workers' queues.
    pub stolen: u64,
    /// Successful steals (each took `stolen / steals` coroutines on average).
    pub steals: u64,
    /// Times a coroutine of this worker parked (waited on something).
    pub parks: u64,
    /// Yields the cooperative budget forced on coroutines of this worker.
    pub budget_yields: u64,
    /// Times this worker went to sleep for lack of work.
    pub sleeps: u64,
    /// Time awake (running coroutines, or looking for work) since it started.
    pub busy: Duration,
    /// Portable coroutines in its local run queue now.
    pub local_queue: usize,
    /// Its started coroutines woken by other threads, waiting in its inbox now.
    pub inbox: usize,
    /// Started coroutines bound to it, alive (running, runnable or parked).
    pub started_alive: usize,
}

/// A snapshot of a runtime's counters, from [`crate::metrics`] or
/// [`crate::Runtime::metrics`].
///
/// Each figure is counted where its event happens, so they check each other: once
/// the runtime is quiet, `spawned() == finished() + live`.
///
/// ```
/// let rt = corun::Runtime::builder().workers(2).build().unwrap();
/// let hs: Vec<_> = (0..10).map(|i| rt.spawn(move || i)).collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// // A joiner is woken as its coroutine returns, a moment before its worker
/// // counts it finished.
/// let mut m = rt.metrics();
/// while m.finished() < 10 {
///     std::thread::yield_now();
///     m = rt.metrics();
/// }
/// assert_eq!(m.spawned(), 10);
/// assert_eq!(m.finished(), 10);
/// assert_eq!(m.live, 0);
/// assert_eq!(m.workers.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// One entry per worker (and per extra thread sysmon started).
    pub workers: Vec<WorkerMetrics>,
    /// One entry per dedicated-thread slot
    /// ([`Builder::dedicated_thread`](crate::Builder::dedicated_thread)), counting
    /// every thread that has run in it.
    pub dedicated: Vec<WorkerMetrics>,
    /// Dedicated threads running now.
    pub dedicated_threads: usize,
    /// Coroutines alive: the started ones each worker holds (`started_alive`), the
    /// started `migratable` ones, and those in the portable run queues. Counted from
    /// those sets, not as `spawned - finished`, so exact when the runtime is quiet;
    /// while it runs, a coroutine just spawned into a worker's next-to-run slot
    /// counts once it starts, and a runnable migratable one counts twice.
    pub live: usize,
    /// Coroutines waiting in the portable run queues (the global queue and every
    /// worker's local queue): unstarted ones, and runnable migratable ones.
    pub queued_unstarted: usize,
    /// Coroutines spawned from outside the runtime (plain threads, other runtimes).
    pub spawned_outside: u64,
    /// Coroutines waiting in the global queue.
    pub global_queue: usize,
    /// Stacks mapped by the runtime (in use or pooled).
    pub stacks_mapped: usize,
    /// Stacks waiting in the shared pool (not counting the workers' small caches).
    pub stacks_pooled: usize,
    /// The deepest stack use of a finished coroutine, in bytes, when stack
    /// statistics are on ([`crate::RuntimeBuilder::stack_stats`]); else `None`.
    pub stack_high_water_max: Option<usize>,
    /// The runtime's own threads: its workers, extra and dedicated threads, its
    /// sysmon, plus its schedtrace monitor when one runs.
    pub threads: usize,
    /// Threads of the process-wide pool of [`crate::blocking`].
    pub blocking_threads: usize,
    /// Workers' run queues handed to another thread (by sysmon; 0 until it exists).
    pub handoffs: u64,
    /// Coroutines that held their worker past sysmon's request to yield, computing
    /// with no yield point (judged by the thread's CPU clock).
    pub stalls_computing: u64,
    /// The same, blocked in a system call.
    pub stalls_blocked: u64,
    /// The same, the cause unknown (the thread's clock or state unreadable).
    pub stalls_unknown: u64,
    /// Workers that went without a switch only because the OS ran other threads
    /// (no warning is given for these).
    pub stalls_descheduled: u64,
}

impl Metrics {
    /// The workers', then the dedicated threads'.
    fn all(&self) -> impl Iterator<Item = &WorkerMetrics> {
        self.workers.iter().chain(&self.dedicated)
    }

    /// Coroutines spawned in all: by each worker's coroutines and from outside.
    pub fn spawned(&self) -> u64 {
        self.spawned_outside + self.all().map(|w| w.spawned).sum::<u64>()
    }

    /// Coroutines that ended (or were dropped unstarted).
    pub fn finished(&self) -> u64 {
        self.all().map(|w| w.finished).sum()
    }

    /// Switches into coroutines, all workers.
    pub fn switches(&self) -> u64 {
        self.all().map(|w| w.switches).sum()
    }

    /// Steals, all workers.
    pub fn steals(&self) -> u64 {
        self.all().map(|w| w.steals).sum()
    }

    /// Parks, all workers.
    pub fn parks(&self) -> u64 {
        self.all().map(|w| w.parks).sum()
    }

    /// Yields forced by the cooperative budget, all workers.
    pub fn budget_yields(&self) -> u64 {
        self.all().map(|w| w.budget_yields).sum()
    }
}

impl Counters {
    pub(crate) fn snapshot(&self, epoch: Instant) -> WorkerMetrics {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerMetrics {
            spawned: l(&self.spawned),
            started: l(&self.started),
            finished: l(&self.finished),
            switches: l(&self.switches),
            stolen: l(&self.stolen),
            steals: l(&self.steals),
            parks: l(&self.parks),
            budget_yields: l(&self.budget_yields),
            sleeps: l(&self.sleeps),
            busy: self.busy(epoch),
            local_queue: 0,
            inbox: 0,
            started_alive: 0,
        }
    }
}

/// A snapshot of the counters (see [`Metrics`]).
pub(crate) fn snapshot(shared: &Shared) -> Metrics {
    // The sets first, the counters after: a worker counts a coroutine finished
    // before it takes it out of its set (release/acquire through the registry's
    // length or the map's lock), so one that is gone here is counted below.
    let ms = &shared.remotes[..shared.ms_started()];
    let alive: Vec<usize> = ms.iter().map(|r| r.registry.len()).collect();
    let migratable_alive = shared.migratable.lock().len();
    let mut workers = Vec::with_capacity(ms.len());
    let (mut started_alive, mut unstarted) = (0, 0);
    for (r, alive) in ms.iter().zip(alive) {
        let mut w = r.counters.snapshot(shared.epoch);
        // Ps are numbered like the workers that hold them at start.
        w.local_queue = shared.allp.get(workers.len()).map_or(0, |p| p.steal.len());
        w.inbox = r.inbox_len.load(Ordering::Relaxed);
        w.started_alive = alive;
        started_alive += alive;
        workers.push(w);
    }
    let mut dedicated = Vec::new();
    for r in &shared.remotes[shared.dedicated.base..] {
        let mut w = r.counters.snapshot(shared.epoch);
        w.inbox = r.inbox_len.load(Ordering::Relaxed);
        w.started_alive = r.registry.len();
        started_alive += w.started_alive;
        dedicated.push(w);
    }
    let dedicated_threads = shared.dedicated.live();
    let global_queue = shared.inject.len();
    // The portable queues hold unstarted coroutines (and runnable migratable
    // ones, which the map counts already: rare, and absent once all wait).
    unstarted += global_queue + workers.iter().map(|w| w.local_queue).sum::<usize>();
    let stats = shared.stack_stats;
    Metrics {
        live: started_alive + migratable_alive + unstarted,
        queued_unstarted: unstarted,
        workers,
        dedicated,
        dedicated_threads,
        spawned_outside: shared.spawned_outside.load(Ordering::Relaxed),
        global_queue,
        stacks_mapped: shared.stacks.mapped(),
        stacks_pooled: shared.stacks.pooled(),
        stack_high_water_max: stats.then(|| shared.stack_high_water_max.load(Ordering::Relaxed)),
        // Its Ms, its dedicated threads, its sysmon, and its schedtrace monitor if
        // one runs.
        threads: ms.len() + dedicated_threads + 1 + shared.monitor.load(Ordering::Relaxed) as usize,
        blocking_threads: crate::blocking::threads(),
        handoffs: shared.handoffs.load(Ordering::Relaxed),
        stalls_computing: shared.stalls.computing.load(Ordering::Relaxed),
        stalls_blocked: shared.stalls.blocked.load(Ordering::Relaxed),
        stalls_unknown: shared.stalls.unknown.load(Ordering::Relaxed),
        stalls_descheduled: shared.stalls.descheduled.load(Ordering::Relaxed),
    }
}
