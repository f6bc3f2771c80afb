//! The state of one runtime that every worker and every waker can reach.

use super::context;
use super::idle::Idle;
use super::inject::Inject;
use super::metrics::Counters;
use super::parker::Parker;
use super::queue::Steal;
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
    /// This worker's netpoller, as other threads reach it.
    pub(crate) net: crate::netpoll::NetRemote,
    pub(crate) counters: Counters,
}

impl Remote {
    pub(crate) fn new(steal: Steal<G>, net: crate::netpoll::NetRemote) -> Remote {
        Remote {
            steal,
            inbox: Mutex::new(Vec::new()),
            inbox_len: AtomicUsize::new(0),
            parker: Parker::new(),
            net,
            counters: Counters::default(),
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
    pub(crate) migratable: Mutex<HashMap<u64, G>>,
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
        self.unpark_worker(idx);
    }

    /// Wakes worker `i` wherever it sleeps (its condition variable or the poller).
    pub(crate) fn unpark_worker(&self, i: usize) {
        let r = &self.remotes[i];
        r.parker.unpark(|| r.net.wake());
    }

    /// Wakes a sleeping worker to look for portable work, if one is needed.
    pub(crate) fn notify_parked(&self) {
        if let Some(i) = self.idle.worker_to_notify() {
            self.unpark_worker(i);
        }
    }

    /// Coroutines spawned and not yet ended.
    pub(crate) fn live(&self) -> usize {
        let (mut spawned, mut finished) = (self.spawned_outside.load(Ordering::Relaxed), 0);
        for r in self.remotes.iter() {
            spawned += r.counters.spawned.load(Ordering::Relaxed);
            finished += r.counters.finished.load(Ordering::Relaxed);
        }
        spawned.saturating_sub(finished) as usize
    }

    /// True if some queue other workers can take from holds work.
    pub(crate) fn has_portable_work(&self) -> bool {
        !self.inject.is_empty() || self.remotes.iter().any(|r| !r.steal.is_empty())
    }
}
