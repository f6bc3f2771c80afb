//! Per-worker event counters, each counted where its event happens.
//!
//! Only the owning worker writes them (a relaxed load and store, no read-modify-write),
//! anyone may read them.

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Aligned to its own cache lines: its owner writes it on every switch, while other
/// threads touch the rest of the worker's shared state.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    /// Coroutines spawned by coroutines of this worker.
    pub(crate) spawned: AtomicU64,
    /// Coroutines this worker started running.
    pub(crate) started: AtomicU64,
    /// Coroutines that ended on this worker (returned, or dropped unstarted).
    pub(crate) finished: AtomicU64,
    /// Switches into a coroutine.
    pub(crate) switches: AtomicU64,
    /// Coroutines taken from other workers' queues.
    pub(crate) stolen: AtomicU64,
    /// Times this worker went to sleep.
    pub(crate) sleeps: AtomicU64,
    /// Successful steals (each takes one or more coroutines).
    pub(crate) steals: AtomicU64,
    /// Times a coroutine suspended itself to wait (the park took effect).
    pub(crate) parks: AtomicU64,
    /// Yields forced by the cooperative budget (`budget.rs`).
    pub(crate) budget_yields: AtomicU64,
    /// Nanoseconds awake, up to the last time this worker went to sleep.
    pub(crate) busy_ns: AtomicU64,
    /// When it last woke, in nanoseconds since the runtime's epoch, plus 1; 0 while
    /// it sleeps.
    pub(crate) awake_since: AtomicU64,
    /// Id of the coroutine it last switched into, until it sleeps (0 then); the
    /// coroutine runs now unless it parked (its state says so) or it is queued
    /// again while its worker picks the next (a moment; not cleared per switch to
    /// keep the switch at one store).
    pub(crate) running: AtomicU64,
}

impl Counters {
    #[inline]
    pub(crate) fn bump(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// The worker wakes (or starts): busy time runs from now.
    pub(crate) fn note_wake(&self, epoch: Instant) {
        let now = epoch.elapsed().as_nanos() as u64;
        self.awake_since.store(now + 1, Ordering::Relaxed);
    }

    /// The worker goes to sleep: adds the time since it woke to its busy time.
    /// Nothing runs on it any more.
    pub(crate) fn note_sleep(&self, epoch: Instant) {
        self.running.store(0, Ordering::Relaxed);
        let since = self.awake_since.load(Ordering::Relaxed);
        if since != 0 {
            let now = epoch.elapsed().as_nanos() as u64;
            Self::bump(&self.busy_ns, (now + 1).saturating_sub(since));
            self.awake_since.store(0, Ordering::Relaxed);
        }
    }

    /// Busy time so far, counting the current stretch if it is awake.
    fn busy(&self, epoch: Instant) -> Duration {
        let mut ns = self.busy_ns.load(Ordering::Relaxed);
        let since = self.awake_since.load(Ordering::Relaxed);
        if since != 0 {
            ns += (epoch.elapsed().as_nanos() as u64 + 1).saturating_sub(since);
        }
        Duration::from_nanos(ns)
    }
}

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
    /// One entry per worker.
    pub workers: Vec<WorkerMetrics>,
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
    /// The runtime's own threads: its workers, plus its monitor when one runs.
    pub threads: usize,
    /// Threads of the process-wide pool of [`crate::blocking`].
    pub blocking_threads: usize,
    /// Workers' run queues handed to another thread (by sysmon; 0 until it exists).
    pub handoffs: u64,
}

impl Metrics {
    /// Coroutines spawned in all: by each worker's coroutines and from outside.
    pub fn spawned(&self) -> u64 {
        self.spawned_outside + self.workers.iter().map(|w| w.spawned).sum::<u64>()
    }

    /// Coroutines that ended (or were dropped unstarted).
    pub fn finished(&self) -> u64 {
        self.workers.iter().map(|w| w.finished).sum()
    }

    /// Switches into coroutines, all workers.
    pub fn switches(&self) -> u64 {
        self.workers.iter().map(|w| w.switches).sum()
    }

    /// Steals, all workers.
    pub fn steals(&self) -> u64 {
        self.workers.iter().map(|w| w.steals).sum()
    }

    /// Parks, all workers.
    pub fn parks(&self) -> u64 {
        self.workers.iter().map(|w| w.parks).sum()
    }

    /// Yields forced by the cooperative budget, all workers.
    pub fn budget_yields(&self) -> u64 {
        self.workers.iter().map(|w| w.budget_yields).sum()
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
