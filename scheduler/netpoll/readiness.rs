//! The readiness of one registered descriptor, and who waits for it.
//!
//! The poller is edge-triggered: it reports a direction once when it becomes ready,
//! not while it stays ready. So an operation is always tried first, and a waiter
//! parks only after it failed with `WouldBlock`, and only if no edge arrived since
//! the attempt began. Each direction counts the edges it has seen (`seq`):
//!
//! ```text
//!  waiter                                   poller
//!  s = seq.load()                           (an edge for this direction)
//!  op() -> WouldBlock                       seq += 1            (SeqCst)
//!  lock waiters                             lock waiters
//!    seq != s ? retry at once                 take every waiter
//!    else push self                         unlock
//!  unlock; park                             unpark each
//! ```
//!
//! Why no edge is lost: the poller bumps `seq` before it takes the lock. If the bump
//! comes before the waiter's check under the lock, the waiter sees it and retries;
//! if after, the poller's lock comes after the waiter's push and finds it. An edge
//! that arrived before the attempt is harmless: the attempt saw its data.

use crate::loom::sync::atomic::{AtomicU32, Ordering};
use crate::loom::sync::Mutex;

/// A direction of IO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Readable (or accept, or closed for reading, or an error).
    Read = 0,
    /// Writable (or connected, or closed for writing, or an error).
    Write = 1,
}

/// Edge counts and waiters of one descriptor, generic over the waiter so the
/// protocol can be model-checked with plain tokens.
pub(crate) struct Readiness<W> {
    seq: [AtomicU32; 2],
    waiters: [Mutex<Vec<W>>; 2],
}

impl<W> Readiness<W> {
    pub(crate) fn new() -> Self {
        Readiness {
            seq: [AtomicU32::new(0), AtomicU32::new(0)],
            waiters: [Mutex::new(Vec::new()), Mutex::new(Vec::new())],
        }
    }

    /// The edge count to compare against after an attempt (read it before trying).
    pub(super) fn seq(&self, dir: Dir) -> u32 {
        self.seq[dir as usize].load(Ordering::SeqCst)
    }

    /// After an attempt that would block: queues `w` unless an edge arrived since
    /// `seen` (then false: try again at once).
    pub(crate) fn wait(&self, dir: Dir, seen: u32, w: W) -> bool {
        let mut q = self.waiters[dir as usize].lock();
        if self.seq[dir as usize].load(Ordering::SeqCst) != seen {
            return false;
        }
        q.push(w);
        true
    }

    /// Removes the waiters `is_me` matches (after a timeout, a cancellation or a
    /// spurious wake-up; an edge already took them out otherwise).
    pub(super) fn forget(&self, dir: Dir, mut is_me: impl FnMut(&W) -> bool) {
        let mut q = self.waiters[dir as usize].lock();
        q.retain(|w| !is_me(w));
    }

    /// An edge in `dir`: counts it, then hands every waiter to `wake`.
    pub(super) fn fire(&self, dir: Dir, wake: impl FnMut(W)) {
        self.seq[dir as usize].fetch_add(1, Ordering::SeqCst);
        let mut q = self.waiters[dir as usize].lock();
        // Nearly always one waiter: pop it and keep the queue's buffer, so the next
        // wait does not allocate.
        if q.len() <= 1 {
            let w = q.pop();
            drop(q);
            w.into_iter().for_each(wake);
            return;
        }
        let taken = std::mem::take(&mut *q);
        drop(q);
        taken.into_iter().for_each(wake);
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/readiness.rs"]
mod loom_tests;
