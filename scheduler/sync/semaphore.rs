//! `Semaphore`: counted permits on [`Sema`](super::sema::Sema).

use super::sema::Sema;
use crate::sched::interrupt::Until;
use crate::sched::park::Reason;
use std::fmt;
use std::time::{Duration, Instant};

/// A counting semaphore whose waiters park. A released permit goes straight to the
/// longest waiter (FIFO); a caller that finds a permit free takes it without queuing.
///
/// ```
/// use corun::sync::Semaphore;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let sem = Arc::new(Semaphore::new(2));
/// let inside = Arc::new(AtomicUsize::new(0));
/// let hs: Vec<_> = (0..8)
///     .map(|_| {
///         let (sem, inside) = (sem.clone(), inside.clone());
///         corun::go!(move || {
///             let _permit = sem.acquire();
///             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///             corun::yield_now();
///             inside.fetch_sub(1, Ordering::SeqCst);
///         })
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    sema: Sema,
}

/// A permit of a [`Semaphore`]; gives it back when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    crate::loom::const_unless_loom! {
        /// A semaphore with `permits` permits.
        ///
        /// ```
        /// static LIMIT: corun::sync::Semaphore = corun::sync::Semaphore::new(4);
        /// assert_eq!(LIMIT.available_permits(), 4);
        /// ```
        pub fn new(permits: usize) -> Self {
            Semaphore {
                sema: Sema::new(permits),
            }
        }
    }

    /// Takes a permit, parking until one is free.
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(1);
    /// let p = s.acquire();
    /// assert_eq!(s.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        crate::sched::budget::consume();
        self.sema.acquire(Reason::Semaphore);
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(1);
    /// let p = s.try_acquire().unwrap();
    /// assert!(s.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sema
            .try_acquire()
            .then(|| SemaphorePermit { sem: self })
    }

    /// Takes a permit, waiting at most `timeout` for one.
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(0);
    /// assert!(s.acquire_timeout(std::time::Duration::from_millis(2)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.sema
            .acquire_until(Until::at(Some(Instant::now() + timeout)), Reason::Semaphore)
            .then(|| SemaphorePermit { sem: self })
    }

    /// Takes a permit unless `until` passes first (the context forms).
    pub(crate) fn acquire_until(&self, until: Until<'_>) -> Option<SemaphorePermit<'_>> {
        crate::sched::budget::consume();
        self.sema
            .acquire_until(until, Reason::Semaphore)
            .then(|| SemaphorePermit { sem: self })
    }

    /// Adds one permit (pairs with [`SemaphorePermit::forget`], or raises the count).
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(0);
    /// s.release();
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    pub fn release(&self) {
        self.sema.release(1);
    }

    /// Adds `n` permits.
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(0);
    /// s.add_permits(3);
    /// assert_eq!(s.available_permits(), 3);
    /// ```
    pub fn add_permits(&self, n: usize) {
        self.sema.release(n);
    }

    /// Permits free right now.
    ///
    /// ```
    /// assert_eq!(corun::sync::Semaphore::new(5).available_permits(), 5);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.sema.available()
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (no release on drop).
    ///
    /// ```
    /// let s = corun::sync::Semaphore::new(1);
    /// s.acquire().forget();
    /// assert_eq!(s.available_permits(), 0);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.sema.release(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish()
    }
}
