//! Per-worker event counters, each counted where its event happens (the
//! snapshots `observe::metrics` makes of them are what users see).
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
    pub(super) busy_ns: AtomicU64,
    /// When it last woke, in nanoseconds since the runtime's epoch, plus 1; 0 while
    /// it sleeps.
    pub(super) awake_since: AtomicU64,
    /// Id of the coroutine it last switched into, until it sleeps (0 then); the
    /// coroutine runs now unless it parked (its state says so) or it is queued
    /// again while its worker picks the next (a moment; not cleared per switch to
    /// keep the switch at one store).
    pub(crate) running: AtomicU64,
}

impl Counters {
    #[inline]
    pub(super) fn bump(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// The worker wakes (or starts): busy time runs from now.
    pub(super) fn note_wake(&self, epoch: Instant) {
        let now = epoch.elapsed().as_nanos() as u64;
        self.awake_since.store(now + 1, Ordering::Relaxed);
    }

    /// The worker goes to sleep: adds the time since it woke to its busy time.
    /// Nothing runs on it any more.
    pub(super) fn note_sleep(&self, epoch: Instant) {
        self.running.store(0, Ordering::Relaxed);
        let since = self.awake_since.load(Ordering::Relaxed);
        if since != 0 {
            let now = epoch.elapsed().as_nanos() as u64;
            Self::bump(&self.busy_ns, (now + 1).saturating_sub(since));
            self.awake_since.store(0, Ordering::Relaxed);
        }
    }

    /// Busy time so far, counting the current stretch if it is awake.
    pub(crate) fn busy(&self, epoch: Instant) -> Duration {
        let mut ns = self.busy_ns.load(Ordering::Relaxed);
        let since = self.awake_since.load(Ordering::Relaxed);
        if since != 0 {
            ns += (epoch.elapsed().as_nanos() as u64 + 1).saturating_sub(since);
        }
        Duration::from_nanos(ns)
    }
}
