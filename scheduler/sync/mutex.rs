//! `Mutex<T>`: one state word and a wait queue, with Go's two modes.
//!
//! The state word holds three bits:
//!
//! - `LOCKED`: somebody holds the lock;
//! - `PARKED`: the wait queue may hold waiters (set and cleared only under the queue
//!   lock, so it is set whenever the queue is not empty);
//! - `WOKEN`: a waiter has been woken and is on its way to compete for the lock, so an
//!   unlock need not wake another (no thundering herd);
//! - `HANDED`: the lock was handed to a waiter that has not run yet, so spinning for it
//!   is pointless (newcomers park at once).
//!
//! `lock` is one CAS `0 -> LOCKED`; `unlock` is one CAS `LOCKED -> 0`, which fails only
//! when a bit says there may be waiters, and only then does the slow path take the
//! queue lock. In the slow path a locker spins briefly with exponential backoff (most
//! critical sections are short and their holder is running on another worker), then
//! queues itself and sets `PARKED` under the queue lock, sleeping only if the lock is
//! still held at that moment.
//!
//! Normal mode (barging): an unlock releases the lock and wakes the first waiter with
//! `RETRY`; the woken waiter competes with newcomers, and if it loses it goes back to
//! the *front* of the queue, keeping the time it started waiting.
//! Handoff (Go's starvation mode): when the first waiter has waited more than
//! [`FAIR_AFTER`](super::sema::FAIR_AFTER) (1 ms), the unlock does not release the lock
//! at all: it wakes that waiter with `HANDOFF` and the lock stays `LOCKED`, now owned by
//! the waiter. So no waiter waits much more than a millisecond plus the queue ahead of it.

use super::sema::{Park, WaitOpts, WaitQueue, Wake, HANDOFF};
use crate::loom::sync::atomic::{spin_loop_hint, AtomicU32, Ordering};
use crate::sched::interrupt::Until;
use crate::sched::park::{Reason, Waiter};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

const LOCKED: u32 = 1;
const PARKED: u32 = 2;
const WOKEN: u32 = 4;
/// The lock was handed to a waiter that has not run yet.
const HANDED: u32 = 8;

/// Spin rounds before parking; round `i` spins `2^i` times then looks at the lock
/// again (backing off keeps the cache line with the holder). 9 rounds are 511 spins,
/// about 13 us on the 2-core AMD EPYC of the benchmarks (25 ns a `pause`): about what
/// a park and a cross-worker wake-up cost, and what a worker spins before it sleeps.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 9;
/// Under loom a spin is a yield to the model checker: keep the state space small.
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 1;

/// The lock without the data: the state word and the queue.
pub(super) struct RawMutex<P: Park = Waiter> {
    state: AtomicU32,
    queue: WaitQueue<P>,
}

impl<P: Park> RawMutex<P> {
    crate::loom::const_unless_loom! {
        pub(crate) fn new() -> Self {
            RawMutex {
                state: AtomicU32::new(0),
                queue: WaitQueue::new(),
            }
        }
    }

    #[inline]
    pub(super) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if let Err(s) = self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        {
            self.lock_slow(s, Until::NEVER);
        }
    }

    /// Takes the lock unless `until` passes first; returns whether it did.
    pub(super) fn lock_until(&self, until: Until<'_>) -> bool {
        match self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(s) => self.lock_slow(s, until),
        }
    }

    #[inline]
    pub(super) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Releases the lock; the caller must hold it.
    #[inline]
    pub(super) fn unlock(&self) {
        if let Err(s) = self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
        {
            self.unlock_slow(s);
        }
    }

    /// Returns false if `until` passed first (never for `Until::NEVER`).
    #[cold]
    fn lock_slow(&self, mut s: u32, until: Until<'_>) -> bool {
        let mut spins = 0;
        // We were woken with RETRY and own the WOKEN bit until we take the lock or
        // go back to sleep.
        let mut woken = false;
        // When we first started waiting (kept across re-queues).
        let mut since = None;
        loop {
            if s & LOCKED == 0 {
                let new = if woken {
                    (s | LOCKED) & !WOKEN
                } else {
                    s | LOCKED
                };
                match self
                    .state
                    .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return true,
                    Err(actual) => s = actual,
                }
                continue;
            }
            // Spin while the holder may be running; not while the lock is on its way to
            // a woken waiter (it runs only once its worker gets to it).
            if s & HANDED == 0 && spins < SPIN_ROUNDS {
                // Exponential backoff between looks, so the holder keeps the line.
                for _ in 0..(1u32 << spins) {
                    spin_loop_hint();
                }
                spins += 1;
                s = self.state.load(Ordering::Relaxed);
                continue;
            }
            let wake = self.queue.wait(
                WaitOpts {
                    until,
                    requeue_since: since,
                    reason: Reason::Mutex,
                },
                || self.set_parked(woken),
                || {},
                |empty| {
                    if empty {
                        self.state.fetch_and(!PARKED, Ordering::Relaxed);
                    }
                },
                |token| {
                    if token == HANDOFF {
                        // We own the lock but are unwinding: release it.
                        self.state.fetch_and(!HANDED, Ordering::Relaxed);
                        self.unlock();
                    } else {
                        self.abandon_woken();
                    }
                },
            );
            match wake {
                Wake::Invalid => {}
                Wake::Woken { token: HANDOFF, .. } => {
                    self.state.fetch_and(!HANDED, Ordering::Relaxed);
                    return true;
                }
                Wake::Woken { since: s, .. } => {
                    woken = true;
                    since = Some(s);
                    spins = 0;
                }
                // Out of the queue without a token: it re-queued us after
                // `set_parked` dropped any WOKEN of ours, so we owe nothing.
                Wake::TimedOut => return false,
            }
            s = self.state.load(Ordering::Relaxed);
        }
    }

    /// Under the queue lock, with our node queued: sets PARKED (and drops WOKEN if it is
    /// ours) if the lock is still held; returns whether to sleep.
    fn set_parked(&self, woken: bool) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                return false;
            }
            let new = if woken {
                (s | PARKED) & !WOKEN
            } else {
                s | PARKED
            };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// A woken waiter unwinds without competing: give up the WOKEN bit and, if the lock
    /// is free with waiters queued, wake one of them.
    fn abandon_woken(&self) {
        let s = self.state.fetch_and(!WOKEN, Ordering::AcqRel) & !WOKEN;
        if s & LOCKED == 0 && s & PARKED != 0 && self.try_lock() {
            // The unlock sees PARKED without WOKEN and wakes the next waiter.
            self.unlock();
        }
    }

    #[cold]
    fn unlock_slow(&self, mut s: u32) {
        loop {
            debug_assert!(s & LOCKED != 0, "unlock of an unlocked mutex");
            if s & PARKED != 0 && s & WOKEN == 0 {
                break;
            }
            // Nobody to wake, or someone is already awake and on the way.
            match self.state.compare_exchange_weak(
                s,
                s & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
        // Under the queue lock, while we still hold the mutex: only a woken waiter that
        // unwinds changes the word now (clearing WOKEN, which is clear), so RMWs suffice.
        self.queue.wake_one(|front| match front {
            None => {
                self.state.fetch_and(!(LOCKED | PARKED), Ordering::Release);
                None
            }
            Some(f) if f.starving => {
                // Handoff: the lock stays LOCKED and passes to the waiter.
                self.state.fetch_or(HANDED, Ordering::Relaxed);
                if !f.more {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                Some(HANDOFF)
            }
            Some(f) => {
                self.state.fetch_or(WOKEN, Ordering::Relaxed);
                let clear = if f.more { LOCKED } else { LOCKED | PARKED };
                self.state.fetch_and(!clear, Ordering::Release);
                Some(super::sema::RETRY)
            }
        });
    }
}

/// A mutual-exclusion lock whose waiters park: a waiting coroutine frees its worker
/// thread, a waiting thread blocks. Coroutines and threads may share one.
///
/// [`lock`](Mutex::lock) returns the guard directly: a panic while holding the lock
/// releases it and does not poison it. Uncontended, `lock` and `unlock` are one CAS
/// each. Under contention a newcomer may take the lock before a waiter that was just
/// woken (for throughput), but a waiter that has waited more than about 1 ms is handed
/// the lock directly, so nobody starves (Go's `sync.Mutex` modes).
///
/// ```
/// use corun::sync::Mutex;
/// use std::sync::Arc;
///
/// let m = Arc::new(Mutex::new(0u64));
/// let hs: Vec<_> = (0..10)
///     .map(|_| {
///         let m = m.clone();
///         corun::go!(move || {
///             for _ in 0..100 {
///                 *m.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for _ in 0..100 {
///     *m.lock() += 1; // a plain thread, sharing the lock
/// }
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(*m.lock(), 1100);
/// ```
pub struct Mutex<T: ?Sized> {
    pub(super) raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one holder at a time, from any thread,
// so sharing it needs `T: Send` (as std's `Mutex`).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the `T` it owns.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    crate::loom::const_unless_loom! {
        /// A new unlocked mutex holding `value`.
        ///
        /// ```
        /// static COUNT: corun::sync::Mutex<u32> = corun::sync::Mutex::new(0);
        /// *COUNT.lock() += 1;
        /// assert_eq!(*COUNT.lock(), 1);
        /// ```
        pub fn new(value: T) -> Self {
            Mutex {
                raw: RawMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns its value.
    ///
    /// ```
    /// let m = corun::sync::Mutex::new(vec![1]);
    /// m.lock().push(2);
    /// assert_eq!(m.into_inner(), vec![1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the lock, parking the caller (coroutine or thread) while another holds it.
    /// Locking a mutex the caller already holds deadlocks.
    ///
    /// ```
    /// let m = corun::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::sched::budget::consume();
        self.raw.lock();
        MutexGuard {
            mutex: self,
            _data: PhantomData,
        }
    }

    /// Takes the lock unless `until` passes first (the context forms).
    pub(crate) fn lock_until(&self, until: Until<'_>) -> Option<MutexGuard<'_, T>> {
        crate::sched::budget::consume();
        self.raw.lock_until(until).then(|| MutexGuard {
            mutex: self,
            _data: PhantomData,
        })
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// ```
    /// let m = corun::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard {
            mutex: self,
            _data: PhantomData,
        })
    }

    /// Whether somebody holds the lock right now (a hint: it may change at once).
    ///
    /// ```
    /// let m = corun::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The value, through a unique borrow of the mutex (no locking needed).
    ///
    /// ```
    /// let mut m = corun::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped (also while
/// unwinding, so a cancelled coroutine releases the locks it holds).
///
/// ```
/// let m = corun::sync::Mutex::new(String::from("a"));
/// {
///     let mut g = m.lock();
///     g.push('b');
/// } // unlocked here
/// assert_eq!(*m.lock(), "ab");
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) mutex: &'a Mutex<T>,
    /// Send/Sync as `&mut T` is (and as the mutex reference allows).
    _data: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock, so no one else accesses the data.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, and `&mut self` that this is the
        // only access through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/mutex.rs"]
mod loom_tests;
