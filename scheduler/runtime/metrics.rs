//! Per-worker event counters, each counted where its event happens.
//!
//! Only the owning worker writes them (a relaxed load and store, no read-modify-write),
//! anyone may read them.

use crate::loom::sync::atomic::{AtomicU64, Ordering};

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
}

impl Counters {
    #[inline]
    pub(crate) fn bump(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
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
    /// Times this worker went to sleep for lack of work.
    pub sleeps: u64,
}

/// A snapshot of a runtime's counters, from [`crate::Runtime::metrics`].
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// One entry per worker.
    pub workers: Vec<WorkerMetrics>,
    /// Coroutines spawned and not yet finished.
    pub live: usize,
    /// Coroutines spawned from outside the runtime (plain threads, other runtimes).
    pub spawned_outside: u64,
    /// Stacks mapped by the runtime (in use or pooled).
    pub stacks_mapped: usize,
    /// Stacks waiting in the shared pool.
    pub stacks_pooled: usize,
    /// Times sysmon took the P of a worker stuck in one coroutine (a CPU hog or a
    /// blocking call) and handed it to another thread.
    pub handoffs: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> WorkerMetrics {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerMetrics {
            spawned: l(&self.spawned),
            started: l(&self.started),
            finished: l(&self.finished),
            switches: l(&self.switches),
            stolen: l(&self.stolen),
            sleeps: l(&self.sleeps),
        }
    }
}
