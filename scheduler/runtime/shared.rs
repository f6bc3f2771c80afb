//! The state of one runtime that every worker and every waker can reach.

use super::context;
use super::idle::Idle;
use super::inject::Inject;
use super::metrics::{Counters, Metrics};
use super::parker::Parker;
use super::queue::Steal;
use super::registry::{Entry, Registry};
use super::task::{G, UNSTARTED};
use crate::coroutine::stack::StackPool;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::collections::HashMap;

/// What other threads may touch of one worker.
pub(crate) struct Remote {
    /// Steals the portable (unstarted or migratable) coroutines of its run queue.
    pub(crate) steal: Steal<G>,
    /// Started coroutines of this worker woken by other threads.
    inbox: Mutex<Vec<G>>,
    pub(crate) inbox_len: AtomicUsize,
    pub(crate) parker: Parker,
    pub(crate) counters: Counters,
    /// Started coroutines bound to this worker, alive (see `registry.rs`).
    pub(crate) registry: Registry,
}

impl Remote {
    pub(crate) fn new(steal: Steal<G>) -> Remote {
        Remote {
            steal,
            inbox: Mutex::new(Vec::new()),
            inbox_len: AtomicUsize::new(0),
            parker: Parker::new(),
            counters: Counters::default(),
            registry: Registry::default(),
        }
    }

    pub(crate) fn take_inbox(&self, into: &mut std::collections::VecDeque<G>) {
        let mut q = self.inbox.lock();
        self.inbox_len.store(0, Ordering::Relaxed);
        into.extend(q.drain(..));
    }
}

pub(crate) struct Shared {
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) inject: Inject<G>,
    pub(crate) idle: Idle,
    pub(crate) stacks: StackPool,
    pub(crate) shutdown: AtomicBool,
    /// Coroutines spawned from outside the runtime (the workers count their own).
    pub(crate) spawned_outside: AtomicU64,
    /// Started `migratable` coroutines, which no single worker owns.
    pub(crate) migratable: Mutex<HashMap<u64, Entry>>,
    /// When the runtime started: busy times and schedtrace count from here.
    pub(crate) epoch: std::time::Instant,
    /// Whether coroutines' stack use is measured (`RuntimeBuilder::stack_stats`).
    pub(crate) stack_stats: bool,
    /// The deepest stack use of a finished coroutine, when `stack_stats`.
    pub(crate) stack_high_water_max: AtomicUsize,
    /// Whether the monitor thread runs (it counts among the runtime's threads).
    pub(crate) monitor: AtomicBool,
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
        self.inject.push(g)?;
        self.spawned_outside.fetch_add(1, Ordering::Relaxed);
        self.notify_parked();
        Ok(())
    }

    /// Queues a woken coroutine (its state is already QUEUED). A started coroutine
    /// goes back to its own worker: `runnext` if the waker is a coroutine on that
    /// worker, else that worker's inbox.
    pub(crate) fn schedule_woken(&self, g: G) {
        let home = g.header.home.load(Ordering::Relaxed);
        debug_assert_ne!(home, UNSTARTED);
        let g = match context::with_worker(|w| {
            w.owned_by(self) && (g.header.migratable || w.index == home as usize)
        }) {
            Some(true) => {
                context::with_worker(|w| w.push_woken(g));
                return;
            }
            _ => g,
        };
        self.push_inbox(home as usize, g);
    }

    fn push_inbox(&self, idx: usize, g: G) {
        let r = &self.remotes[idx];
        {
            let mut q = r.inbox.lock();
            q.push(g);
            r.inbox_len.store(q.len(), Ordering::Release);
        }
        r.parker.unpark();
    }

    /// Wakes a sleeping worker to look for portable work, if one is needed.
    pub(crate) fn notify_parked(&self) {
        if let Some(i) = self.idle.worker_to_notify() {
            self.remotes[i].parker.unpark();
        }
    }

    /// A snapshot of the counters (see [`Metrics`]).
    pub(crate) fn metrics(&self) -> Metrics {
        // The sets first, the counters after: a worker counts a coroutine finished
        // before it takes it out of its set (release/acquire through the registry's
        // length or the map's lock), so one that is gone here is counted below.
        let alive: Vec<usize> = self.remotes.iter().map(|r| r.registry.len()).collect();
        let migratable_alive = self.migratable.lock().len();
        let mut workers = Vec::with_capacity(self.remotes.len());
        let (mut started_alive, mut unstarted) = (0, 0);
        for (r, alive) in self.remotes.iter().zip(alive) {
            let mut w = r.counters.snapshot(self.epoch);
            w.local_queue = r.steal.len();
            w.inbox = r.inbox_len.load(Ordering::Relaxed);
            w.started_alive = alive;
            started_alive += alive;
            workers.push(w);
        }
        let global_queue = self.inject.len();
        // The portable queues hold unstarted coroutines (and runnable migratable
        // ones, which the map counts already: rare, and absent once all wait).
        unstarted += global_queue + workers.iter().map(|w| w.local_queue).sum::<usize>();
        let stats = self.stack_stats;
        Metrics {
            live: started_alive + migratable_alive + unstarted,
            queued_unstarted: unstarted,
            workers,
            spawned_outside: self.spawned_outside.load(Ordering::Relaxed),
            global_queue,
            stacks_mapped: self.stacks.mapped(),
            stacks_pooled: self.stacks.pooled(),
            stack_high_water_max: stats.then(|| self.stack_high_water_max.load(Ordering::Relaxed)),
            threads: self.remotes.len() + self.monitor.load(Ordering::Relaxed) as usize,
            blocking_threads: crate::blocking::threads(),
            handoffs: 0,
        }
    }

    /// True if some queue other workers can take from holds work.
    pub(crate) fn has_portable_work(&self) -> bool {
        !self.inject.is_empty() || self.remotes.iter().any(|r| !r.steal.is_empty())
    }
}
