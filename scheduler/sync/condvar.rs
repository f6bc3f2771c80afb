//! `Condvar`: a wait queue paired with a [`Mutex`](super::Mutex) at each wait.
//!
//! A waiter queues itself *before* it releases the mutex, so a notifier that takes the
//! mutex after it (or that changed the condition under the mutex) finds it queued.

use super::mutex::{MutexGuard, RawMutex};
use super::sema::{WaitOpts, WaitQueue, Wake, RETRY};
use crate::sched::interrupt::Until;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// A condition variable for [`Mutex`](super::Mutex): waiters park (a coroutine frees
/// its worker) until notified. `wait` takes the guard by `&mut` (as `parking_lot`), and
/// may return spuriously: wait in a loop that checks the condition, or use
/// [`wait_while`](Condvar::wait_while).
///
/// ```
/// use corun::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p = pair.clone();
/// let h = corun::go!(move || {
///     *p.0.lock() = true;
///     p.1.notify_one();
/// });
/// let (lock, cv) = &*pair;
/// let mut ready = lock.lock();
/// while !*ready {
///     cv.wait(&mut ready);
/// }
/// drop(ready);
/// h.join().unwrap();
/// ```
#[derive(Default)]
pub struct Condvar {
    queue: WaitQueue,
}

/// Whether a [`Condvar::wait_timeout`] returned because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended by timeout rather than by a notification.
    ///
    /// ```
    /// use corun::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let mut g = m.lock();
    /// let r = cv.wait_timeout(&mut g, std::time::Duration::from_millis(1));
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// Re-takes the mutex when a wait ends, normally or by unwinding, if it was released.
struct Relock<'a> {
    raw: &'a RawMutex,
    released: &'a Cell<bool>,
}

impl Drop for Relock<'_> {
    fn drop(&mut self) {
        if self.released.get() {
            self.raw.lock();
        }
    }
}

impl Condvar {
    crate::loom::const_unless_loom! {
        /// A condition variable with no waiters.
        ///
        /// ```
        /// static CV: corun::sync::Condvar = corun::sync::Condvar::new();
        /// assert!(!CV.notify_one());
        /// ```
        pub fn new() -> Self {
            Condvar {
                queue: WaitQueue::new(),
            }
        }
    }

    /// Releases the guard's mutex, parks until notified (or spuriously), and re-takes
    /// the mutex before returning.
    ///
    /// ```
    /// use corun::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    /// let st = Arc::new((Mutex::new(0), Condvar::new()));
    /// let s = st.clone();
    /// std::thread::spawn(move || {
    ///     *s.0.lock() = 1;
    ///     s.1.notify_all();
    /// });
    /// let mut g = st.0.lock();
    /// while *g == 0 {
    ///     st.1.wait(&mut g);
    /// }
    /// assert_eq!(*g, 1);
    /// ```
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_inner(&guard.mutex.raw, Until::NEVER);
    }

    /// Waits while `condition` holds (checked with the lock held), then returns with the
    /// lock held and the condition false.
    ///
    /// ```
    /// use corun::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    /// let st = Arc::new((Mutex::new(3), Condvar::new()));
    /// let s = st.clone();
    /// let h = corun::go!(move || {
    ///     for _ in 0..3 {
    ///         *s.0.lock() -= 1;
    ///         s.1.notify_one();
    ///     }
    /// });
    /// let mut g = st.0.lock();
    /// st.1.wait_while(&mut g, |n| *n > 0);
    /// assert_eq!(*g, 0);
    /// drop(g);
    /// h.join().unwrap();
    /// ```
    pub fn wait_while<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) {
        while condition(&mut **guard) {
            self.wait(guard);
        }
    }

    /// As [`wait`](Condvar::wait), giving up after `timeout`.
    ///
    /// ```
    /// use corun::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let h = corun::go!(move || {
    ///     let mut g = m.lock();
    ///     cv.wait_timeout(&mut g, Duration::from_millis(5)).timed_out()
    /// });
    /// assert!(h.join().unwrap());
    /// ```
    pub fn wait_timeout<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let deadline = Instant::now() + timeout;
        WaitTimeoutResult(self.wait_inner(&guard.mutex.raw, Until::at(Some(deadline))))
    }

    /// Returns true if the wait timed out.
    fn wait_inner(&self, raw: &RawMutex, until: Until<'_>) -> bool {
        let released = Cell::new(false);
        let _relock = Relock {
            raw,
            released: &released,
        };
        let wake = self.queue.wait(
            WaitOpts {
                until,
                requeue_since: None,
                reason: crate::sched::park::Reason::Condvar,
            },
            || true,
            || {
                // Queued first: a notify from now on finds us.
                released.set(true);
                raw.unlock();
            },
            |_| {},
            |_| {
                // Notified, then cancelled: pass the notification on.
                self.notify_one();
            },
        );
        wake == Wake::TimedOut
    }

    /// Wakes one waiter, if any; returns whether it woke one.
    ///
    /// ```
    /// let cv = corun::sync::Condvar::new();
    /// assert!(!cv.notify_one()); // nobody waits
    /// ```
    pub fn notify_one(&self) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        self.queue.wake_one(|front| front.map(|_| RETRY))
    }

    /// Wakes every waiter; returns how many.
    ///
    /// ```
    /// let cv = corun::sync::Condvar::new();
    /// assert_eq!(cv.notify_all(), 0);
    /// ```
    pub fn notify_all(&self) -> usize {
        if self.queue.is_empty() {
            return 0;
        }
        self.queue.wake_all(RETRY)
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
