//! Synchronisation shim: one API, two back ends.
//!
//! The scheduler's concurrent data structures (the per-P run queue, the
//! injector, ...) import every atomic, lock, cell and thread primitive from
//! here instead of from `std`. In a normal build these are the real `std` /
//! `parking_lot` types (zero cost: thin `#[inline]` wrappers at most). When
//! the crate is built with `RUSTFLAGS="--cfg loom"` they are [loom]'s mock
//! types, so the *production* code, not a copy of it, is model-checked: loom
//! runs a test body under every legal thread interleaving and every
//! weak-memory outcome allowed by the C++11 model (up to a preemption bound),
//! and `UnsafeCell` accesses are checked for data races.
//!
//! The API is the intersection of what both back ends can offer:
//!
//! * `sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence,
//!   Ordering, spin_loop_hint}`; `spin_loop_hint` is `std::hint::spin_loop`
//!   normally and `loom::thread::yield_now` under loom (a spinning thread must
//!   yield to the model checker or the model never terminates).
//! * `sync::{Arc, Mutex, MutexGuard, Condvar}` with `parking_lot` semantics:
//!   `lock()` returns the guard directly (no poisoning; under loom a poisoned
//!   lock is a bug in the model and panics), `Condvar::wait(&mut guard)`.
//!   Under loom the guard is wrapped so the by-reference `wait` works on top
//!   of loom's by-value API. `Condvar::wait_timeout` under loom is a plain
//!   `wait` that reports "not timed out": loom has no time, and treating the
//!   timeout as never firing means a model whose progress silently depends
//!   on a timeout (a lost wake-up) is reported as a deadlock instead of
//!   being masked.
//! * `cell::UnsafeCell<T>` with loom's closure API `with(|*const T|)` /
//!   `with_mut(|*mut T|)`; the std version is a `#[repr(transparent)]`
//!   wrapper around `core::cell::UnsafeCell`.
//! * `thread::{spawn, yield_now, JoinHandle}`.
//!
//! Every lock of the crate comes from here, except the three in `static`s
//! (`sched/deadlock.rs`, `signal.rs`, `observe/trace.rs`), which are std's: a loom
//! lock cannot be built in a const, and no model reaches them.
//!
//! [loom]: https://docs.rs/loom

// The shim offers the whole API above whether or not the crate uses every
// item of it in a given configuration (e.g. `thread` is used by the loom
// models only).
#![allow(dead_code, unused_imports)]

#[cfg(not(loom))]
pub mod sync {
    pub use std::sync::Arc;

    pub use parking_lot::{Mutex, MutexGuard};

    /// Atomics; `std`'s, plus [`spin_loop_hint`].
    pub mod atomic {
        pub use std::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };

        /// Busy-wait hint (`std::hint::spin_loop`; a yield under loom).
        #[inline]
        pub fn spin_loop_hint() {
            std::hint::spin_loop();
        }
    }

    /// A condition variable paired with [`Mutex`] (`parking_lot`'s).
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        #[inline]
        pub fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Atomically unlocks `guard`'s mutex and blocks until notified
        /// (spurious wake-ups possible), then re-locks.
        #[inline]
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }

        /// Like [`wait`](Self::wait) with a time limit; returns `true` if it
        /// timed out.
        #[inline]
        pub fn wait_timeout<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: std::time::Duration,
        ) -> bool {
            self.0.wait_for(guard, timeout).timed_out()
        }

        #[inline]
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        #[inline]
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(loom)]
pub mod sync {
    pub use loom::sync::Arc;
    use std::ops::{Deref, DerefMut};

    /// Atomics; loom's, plus [`spin_loop_hint`].
    pub mod atomic {
        pub use loom::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };

        /// Under loom a spin must yield so other model threads can run.
        #[inline]
        pub fn spin_loop_hint() {
            loom::thread::yield_now();
        }
    }

    /// loom's mutex behind a `parking_lot`-like (non-poisoning) API.
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// Guard of [`Mutex`]. The `Option` is `None` only transiently inside
    /// [`Condvar::wait`], which needs to hand loom's guard over by value.
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        #[track_caller]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("poisoned loom mutex")))
        }

        #[track_caller]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(MutexGuard(Some(guard))),
                Err(std::sync::TryLockError::WouldBlock) => None,
                Err(std::sync::TryLockError::Poisoned(_)) => panic!("poisoned loom mutex"),
            }
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard taken by Condvar::wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard taken by Condvar::wait")
        }
    }

    /// loom's condition variable behind a `parking_lot`-like API.
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        #[track_caller]
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard taken by Condvar::wait");
            guard.0 = Some(self.0.wait(inner).expect("poisoned loom mutex"));
        }

        /// loom has no clock: this is [`wait`](Self::wait) and always reports
        /// "not timed out" (see the module docs for why).
        #[track_caller]
        pub fn wait_timeout<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: std::time::Duration,
        ) -> bool {
            self.wait(guard);
            false
        }

        #[track_caller]
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        #[track_caller]
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(not(loom))]
pub mod cell {
    /// `core::cell::UnsafeCell` with loom's closure-based access API.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline]
        pub const fn new(value: T) -> Self {
            UnsafeCell(core::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a shared raw pointer to the value. Creating the
        /// pointer is safe; dereferencing it is the caller's `unsafe`.
        #[inline]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a mutable raw pointer to the value. Creating the
        /// pointer is safe; dereferencing it is the caller's `unsafe`.
        #[inline]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
pub mod cell {
    pub use loom::cell::UnsafeCell;
}

#[cfg(not(loom))]
pub mod thread {
    pub use std::thread::{spawn, yield_now, JoinHandle};
}

#[cfg(loom)]
pub mod thread {
    pub use loom::thread::{spawn, yield_now, JoinHandle};
}

/// Defines a constructor that is a `const fn` normally and a plain `fn` under loom,
/// whose types cannot be built in a const context: one body for both builds.
#[allow(unused_macros)] // not every includer of this shim defines constructors
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[cfg(not(loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        $(#[$attr])*
        #[cfg(loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
#[allow(unused_imports)]
pub(crate) use const_unless_loom;
