//! `WaitGroup`: Go's `sync.WaitGroup`.

use super::sema::{WaitOpts, WaitQueue, RETRY};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use std::fmt;
use std::sync::Arc;

struct Inner {
    count: AtomicUsize,
    queue: WaitQueue,
}

/// Waits for a collection of coroutines or threads to finish, as Go's `sync.WaitGroup`:
/// [`add`](WaitGroup::add) before starting work, [`done`](WaitGroup::done) when each
/// piece finishes, [`wait`](WaitGroup::wait) parks until the count is zero. Clones share
/// one counter.
///
/// ```
/// use corun::sync::WaitGroup;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let wg = WaitGroup::new();
/// let n = Arc::new(AtomicU32::new(0));
/// for _ in 0..50 {
///     wg.add(1);
///     let (wg, n) = (wg.clone(), n.clone());
///     corun::go!(move || {
///         n.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(n.load(Ordering::Relaxed), 50);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    /// A wait group with count zero.
    ///
    /// ```
    /// corun::sync::WaitGroup::new().wait(); // count zero: returns at once
    /// ```
    pub fn new() -> Self {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                queue: WaitQueue::new(),
            }),
        }
    }

    /// Adds `n` to the count.
    ///
    /// ```
    /// let wg = corun::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn add(&self, n: usize) {
        self.inner.count.fetch_add(n, Ordering::AcqRel);
    }

    /// Lowers the count by one, waking the waiters when it reaches zero.
    ///
    /// # Panics
    /// If the count is already zero (as Go's "negative WaitGroup counter").
    ///
    /// ```
    /// let wg = corun::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn done(&self) {
        let prev = self.inner.count.fetch_sub(1, Ordering::AcqRel);
        if prev == 0 {
            self.inner.count.fetch_add(1, Ordering::AcqRel);
            panic!("WaitGroup::done called more times than add");
        }
        if prev == 1 {
            // Takes the queue lock: a waiter that checked the count under that lock
            // before us is queued, one that checks after sees zero.
            self.inner.queue.wake_all(RETRY);
        }
    }

    /// Parks until the count is zero.
    ///
    /// ```
    /// let wg = corun::sync::WaitGroup::new();
    /// wg.add(1);
    /// let w = wg.clone();
    /// std::thread::spawn(move || w.done());
    /// wg.wait();
    /// ```
    pub fn wait(&self) {
        while self.inner.count.load(Ordering::Acquire) != 0 {
            self.inner.queue.wait(
                WaitOpts {
                    reason: crate::sched::park::Reason::WaitGroup,
                    ..WaitOpts::default()
                },
                || self.inner.count.load(Ordering::Acquire) != 0,
                || {},
                |_| {},
                |_| {},
            );
        }
    }

    /// The count right now.
    ///
    /// ```
    /// assert_eq!(corun::sync::WaitGroup::new().count(), 0);
    /// ```
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
