//! `RwLock<T>`: Go's `RWMutex` scheme on corun's mutex and semaphores.
//!
//! `readers` counts active and waiting readers; a writer, once it holds the writer
//! mutex, subtracts `MAX_READERS` so the count goes negative: new readers see that and
//! queue on `reader_sem`; the writer waits on `writer_sem` for the readers that were
//! already inside (`departing` of them), the last of which releases it. Unlocking, the
//! writer adds `MAX_READERS` back and releases one `reader_sem` permit per reader that
//! queued meanwhile. Writers are thus preferred: a waiting writer holds back new
//! readers, and readers that queued behind a writer go before the next writer.
//! A read lock is one atomic add to take and one to release.

use super::mutex::RawMutex;
use super::sema::{Park, Sema};
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::sched::park::{Reason, Waiter};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

const MAX_READERS: i64 = 1 << 30;

/// The lock without the data.
pub(super) struct RawRwLock<P: Park = Waiter> {
    writer: RawMutex<P>,
    /// Readers in or queued (an i64 in two's complement), minus `MAX_READERS` while a
    /// writer holds or waits for the lock.
    readers: AtomicU64,
    /// Readers the waiting writer still waits for.
    departing: AtomicU64,
    writer_sem: Sema<P>,
    reader_sem: Sema<P>,
}

fn add(a: &AtomicU64, d: i64) -> i64 {
    (a.fetch_add(d as u64, Ordering::SeqCst) as i64).wrapping_add(d)
}

/// Finishes an acquire that unwound (the coroutine was cancelled while waiting): waits
/// for the permit that is owed to it anyway (not a cancellation point while unwinding),
/// then unlocks, so the counts stay right.
struct Finish<'a, P: Park> {
    lock: &'a RawRwLock<P>,
    write: bool,
}

impl<P: Park> Drop for Finish<'_, P> {
    fn drop(&mut self) {
        if self.write {
            self.lock.writer_sem.acquire(Reason::RwLockWrite);
            self.lock.write_unlock();
        } else {
            self.lock.reader_sem.acquire(Reason::RwLockRead);
            self.lock.read_unlock();
        }
    }
}

impl<P: Park> RawRwLock<P> {
    crate::loom::const_unless_loom! {
        pub(crate) fn new() -> Self {
            RawRwLock {
                writer: RawMutex::new(),
                readers: AtomicU64::new(0),
                departing: AtomicU64::new(0),
                writer_sem: Sema::new(0),
                reader_sem: Sema::new(0),
            }
        }
    }

    /// Waits to be let in as a reader or the writer; if the wait unwinds (a
    /// cancellation), `Finish` withdraws what was announced.
    fn wait(&self, write: bool) {
        let finish = Finish { lock: self, write };
        if write {
            self.writer_sem.acquire(Reason::RwLockWrite);
        } else {
            self.reader_sem.acquire(Reason::RwLockRead);
        }
        std::mem::forget(finish);
    }

    pub(super) fn read(&self) {
        if add(&self.readers, 1) < 0 {
            // A writer holds or waits: wait for its unlock to let us in.
            self.wait(false);
        }
    }

    pub(super) fn try_read(&self) -> bool {
        let mut r = self.readers.load(Ordering::SeqCst);
        loop {
            if (r as i64) < 0 {
                return false;
            }
            match self
                .readers
                .compare_exchange_weak(r, r + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => r = actual,
            }
        }
    }

    pub(super) fn read_unlock(&self) {
        let r = add(&self.readers, -1);
        if r < 0 {
            debug_assert!(
                r != -1 && r != -1 - MAX_READERS,
                "read_unlock of unlocked RwLock"
            );
            // A writer waits: the last reader that was inside lets it in.
            if add(&self.departing, -1) == 0 {
                self.writer_sem.release(1);
            }
        }
    }

    pub(super) fn write(&self) {
        self.writer.lock();
        // Announce the writer; `r` readers were inside.
        let r = add(&self.readers, -MAX_READERS) + MAX_READERS;
        if r != 0 && add(&self.departing, r) != 0 {
            self.wait(true);
        }
    }

    pub(super) fn try_write(&self) -> bool {
        if !self.writer.try_lock() {
            return false;
        }
        if self
            .readers
            .compare_exchange(0, (-MAX_READERS) as u64, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.writer.unlock();
            return false;
        }
        true
    }

    pub(super) fn write_unlock(&self) {
        // Readers that queued while we held the lock.
        let r = add(&self.readers, MAX_READERS);
        debug_assert!(r < MAX_READERS, "write_unlock of unlocked RwLock");
        if r > 0 {
            self.reader_sem.release(r as usize);
        }
        self.writer.unlock();
    }
}

/// A reader-writer lock whose waiters park: many readers or one writer. Writers are
/// preferred (as Go's `RWMutex`): once a writer waits, new readers wait behind it, so a
/// stream of readers cannot starve writers; hence a reader that takes a second read
/// lock while a writer waits deadlocks. No poisoning.
///
/// ```
/// use corun::sync::RwLock;
/// use std::sync::Arc;
///
/// let l = Arc::new(RwLock::new(vec![1, 2, 3]));
/// let w = {
///     let l = l.clone();
///     corun::go!(move || l.write().push(4))
/// };
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let l = l.clone();
///         corun::go!(move || l.read().len())
///     })
///     .collect();
/// for r in readers {
///     let n = r.join().unwrap();
///     assert!(n == 3 || n == 4);
/// }
/// w.join().unwrap();
/// assert_eq!(*l.read(), [1, 2, 3, 4]);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (needs Sync); a writer on any thread
// gets `&mut T` (needs Send), as std's `RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the `T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

impl<T> RwLock<T> {
    crate::loom::const_unless_loom! {
        /// A new unlocked lock holding `value`.
        ///
        /// ```
        /// static TABLE: corun::sync::RwLock<Vec<u8>> = corun::sync::RwLock::new(Vec::new());
        /// TABLE.write().push(1);
        /// assert_eq!(TABLE.read().len(), 1);
        /// ```
        pub fn new(value: T) -> Self {
            RwLock {
                raw: RawRwLock::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns its value.
    ///
    /// ```
    /// assert_eq!(corun::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            _data: PhantomData,
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            _data: PhantomData,
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a shared lock, parking while a writer holds or waits for the lock.
    ///
    /// ```
    /// let l = corun::sync::RwLock::new(1);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 2);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::sched::budget::consume();
        self.raw.read();
        self.read_guard()
    }

    /// Takes a shared lock if no writer holds or waits for it.
    ///
    /// ```
    /// let l = corun::sync::RwLock::new(1);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw.try_read().then(|| self.read_guard())
    }

    /// Takes the exclusive lock if nobody holds the lock.
    ///
    /// ```
    /// let l = corun::sync::RwLock::new(1);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw.try_write().then(|| self.write_guard())
    }

    /// Takes the exclusive lock, parking until every reader and writer is out.
    ///
    /// ```
    /// let l = corun::sync::RwLock::new(1);
    /// *l.write() += 1;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::sched::budget::consume();
        self.raw.write();
        self.write_guard()
    }

    /// The value, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut l = corun::sync::RwLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Shared access to the data of an [`RwLock`]; releases it when dropped.
///
/// ```
/// let l = corun::sync::RwLock::new(5);
/// let g = l.read();
/// assert_eq!(*g, 5);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _data: PhantomData<&'a T>,
}

/// Exclusive access to the data of an [`RwLock`]; releases it when dropped.
///
/// ```
/// let l = corun::sync::RwLock::new(5);
/// let mut g = l.write();
/// *g = 6;
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _data: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: no writer has access until it is released.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: nobody else has access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/rwlock.rs"]
mod loom_tests;
