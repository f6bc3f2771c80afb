//! The global run queue ("injector"), Go's `sched.runq`.
//!
//! Tasks spawned from outside a worker, and the overflow of a full per-P
//! queue ([`Local::push_back_or_overflow`]), go here; idle workers take
//! batches from it ([`Inject::pop_n`]), and every worker polls it now and
//! then for fairness.
//!
//! # Design
//!
//! A `Mutex<VecDeque<T>>` (through the [`crate::loom`] shim, so it is
//! model-checked with the local queue). The injector is off the hot path:
//! the local queue absorbs almost all traffic and the injector sees either
//! single external spawns or batches of half a local queue, so one
//! uncontended lock per batch is cheap; `VecDeque` keeps the storage
//! contiguous and reuses it.
//!
//! # Invariants
//!
//! * `len` always equals the queue length as of the last unlock (it is only
//!   written under the lock). It lets `len()` / `is_empty()` be read without
//!   the lock, e.g. by a spinning worker deciding whether to take the lock at
//!   all; it is a hint, a non-zero value does not promise a successful `pop`.
//! * `closed` only goes `false -> true`, under the lock. `push` checks it
//!   under the same lock, so every `push` that returned `Ok` is ordered
//!   before `close()` and its task is seen by a drain that follows `close()`.
//!   `push_batch` is never refused: it only moves tasks that were already
//!   accepted (local-queue overflow), and refusing would leave the caller
//!   holding tasks with nowhere to put them. After a close they stay queued
//!   until popped or until the `Inject` is dropped (which drops them).
//!
//! # Orderings
//!
//! `len` is stored and loaded `SeqCst`. The data itself is published by the
//! mutex; `len` exists for the scheduler's sleep protocol, which is a
//! Dekker-style handshake (a spawner does "push; if nobody is spinning, wake
//! a worker", a worker going idle does "announce idle; re-check queues").
//! Both sides' accesses must be in one total order for that handshake to
//! rule out a lost wake-up, which Acquire/Release does not give. On x86 the
//! SeqCst store costs an `xchg`, negligible next to the lock it sits under,
//! and the SeqCst load is a plain `mov`.
//!
//! [`Local::push_back_or_overflow`]: super::queue::Local::push_back_or_overflow

use std::collections::VecDeque;

use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use crate::loom::sync::{Mutex, MutexGuard};

/// The global, mutex-protected FIFO of runnable tasks.
pub(crate) struct Inject<T> {
    synced: Mutex<Synced<T>>,
    /// Mirror of `synced.queue.len()`, written under the lock.
    len: AtomicUsize,
    /// Mirror of `synced.closed`, written under the lock.
    closed: AtomicBool,
}

struct Synced<T> {
    queue: VecDeque<T>,
    closed: bool,
}

impl<T> Inject<T> {
    pub(crate) fn new() -> Self {
        Inject {
            synced: Mutex::new(Synced {
                queue: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Number of queued tasks, without taking the lock (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    /// `len() == 0`, without taking the lock (a snapshot).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses further [`push`](Self::push)es. Returns `true` if this call
    /// closed the injector, `false` if it was already closed. Queued tasks
    /// stay and can still be popped (the shutdown path drains them).
    pub(crate) fn close(&self) -> bool {
        let mut synced = self.synced.lock();
        if synced.closed {
            return false;
        }
        synced.closed = true;
        self.closed.store(true, SeqCst);
        true
    }

    /// Whether [`close`](Self::close) has been called (a snapshot).
    #[allow(dead_code)] // injector API (tests, shutdown checks)
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Enqueues one task at the back; gives it back if the injector is
    /// closed.
    pub(crate) fn push(&self, task: T) -> Result<(), T> {
        let mut synced = self.synced.lock();
        if synced.closed {
            return Err(task);
        }
        synced.queue.push_back(task);
        self.len.store(synced.queue.len(), SeqCst);
        Ok(())
    }

    /// Enqueues every task of `tasks` at the back, in order, under one lock.
    /// Never refused, even after [`close`](Self::close) (see the module
    /// docs). `tasks` runs while the lock is held, so it must not touch this
    /// injector.
    pub(super) fn push_batch(&self, tasks: impl Iterator<Item = T>) {
        let mut synced = self.synced.lock();
        synced.queue.extend(tasks);
        self.len.store(synced.queue.len(), SeqCst);
    }

    /// Dequeues the task at the front.
    pub(crate) fn pop(&self) -> Option<T> {
        // Lock-free early out: the common "nothing global to do" case of a
        // worker's periodic poll does not touch the lock's cache line.
        if self.is_empty() {
            return None;
        }
        let mut synced = self.synced.lock();
        let task = synced.queue.pop_front();
        self.len.store(synced.queue.len(), SeqCst);
        task
    }

    /// Takes up to `n` tasks from the front as an iterator that holds the
    /// lock until dropped. Its length is exact, so it can be fed straight to
    /// [`Local::push_back`](super::queue::Local::push_back), e.g.
    /// `local.push_back(inject.pop_n(local.remaining_slots() / 2))`
    /// (Go's `globrunqget`). Tasks the iterator was not advanced over stay
    /// queued.
    pub(crate) fn pop_n(&self, n: usize) -> PopN<'_, T> {
        if n == 0 || self.is_empty() {
            return PopN {
                inject: self,
                synced: None,
                remaining: 0,
            };
        }
        let synced = self.synced.lock();
        let remaining = n.min(synced.queue.len());
        // Publish the new length now rather than on drop: the claimed tasks
        // are as good as gone for other workers.
        self.len.store(synced.queue.len() - remaining, SeqCst);
        PopN {
            inject: self,
            synced: Some(synced),
            remaining,
        }
    }
}

impl<T> Default for Inject<T> {
    fn default() -> Self {
        Inject::new()
    }
}

/// Iterator returned by [`Inject::pop_n`]; holds the injector's lock.
pub(crate) struct PopN<'a, T> {
    inject: &'a Inject<T>,
    synced: Option<MutexGuard<'a, Synced<T>>>,
    remaining: usize,
}

impl<T> Iterator for PopN<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.synced.as_mut()?.queue.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for PopN<'_, T> {}

impl<T> Drop for PopN<'_, T> {
    fn drop(&mut self) {
        if self.remaining != 0 {
            // Not fully consumed: the unclaimed tasks are still queued.
            if let Some(synced) = &self.synced {
                self.inject.len.store(synced.queue.len(), SeqCst);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_len() {
        let inject = Inject::new();
        assert!(inject.is_empty());
        assert_eq!(inject.pop(), None);
        for i in 0..10 {
            inject.push(i).unwrap();
        }
        inject.push_batch(10..20);
        assert_eq!(inject.len(), 20);
        for i in 0..5 {
            assert_eq!(inject.pop(), Some(i));
        }
        assert_eq!(inject.len(), 15);
        let batch = inject.pop_n(4);
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.collect::<Vec<_>>(), vec![5, 6, 7, 8]);
        assert_eq!(inject.len(), 11);
        assert_eq!(
            inject.pop_n(100).collect::<Vec<_>>(),
            (9..20).collect::<Vec<_>>()
        );
        assert!(inject.is_empty());
        assert_eq!(inject.pop_n(3).len(), 0);
    }

    #[test]
    fn partially_consumed_pop_n_keeps_the_rest() {
        let inject = Inject::new();
        inject.push_batch(0..10);
        {
            let mut batch = inject.pop_n(6);
            assert_eq!(batch.next(), Some(0));
            assert_eq!(batch.next(), Some(1));
            assert_eq!(inject.len(), 4); // claimed view while held
        }
        assert_eq!(inject.len(), 8);
        assert_eq!(inject.pop(), Some(2));
    }

    #[test]
    fn close_refuses_push_but_keeps_queued_tasks() {
        let inject = Inject::new();
        inject.push(1).unwrap();
        assert!(!inject.is_closed());
        assert!(inject.close());
        assert!(!inject.close());
        assert!(inject.is_closed());
        assert_eq!(inject.push(2), Err(2));
        inject.push_batch([3, 4].into_iter()); // overflow of accepted tasks
        assert_eq!(inject.len(), 3);
        assert_eq!(inject.pop_n(10).collect::<Vec<_>>(), vec![1, 3, 4]);
    }

    #[test]
    fn drop_drops_queued_tasks() {
        let token = std::sync::Arc::new(());
        let inject = Inject::new();
        for _ in 0..5 {
            inject.push(token.clone()).unwrap();
        }
        assert_eq!(std::sync::Arc::strong_count(&token), 6);
        drop(inject);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
    }
}
