//! A worker's registry: the started coroutines bound to it, alive, each with the
//! range of its stack.
//!
//! Its worker adds a coroutine when it starts it and removes it when it ends (index =
//! `header.slot`, swap-remove). Holding it keeps a parked coroutine's task alive and
//! its stack out of the pool; shutdown walks it. Other threads read it too
//! (`corun::dump`, metrics) without the worker's help, so it sits behind a lock that
//! is uncontended in practice: one atomic swap to take it and a plain store to give
//! it back (a `parking_lot` mutex pays a second read-modify-write on unlock). A
//! reader holds it only to copy out what it needs.

use super::task::G;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One started coroutine and the body of its stack, `[lo, hi)`.
pub(crate) struct Started {
    pub(crate) g: G,
    pub(crate) stack: (usize, usize),
}

pub(crate) struct Registry {
    locked: AtomicBool,
    /// `entries.len()`, readable without the lock.
    len: AtomicUsize,
    entries: UnsafeCell<Vec<Started>>,
}

// SAFETY: `entries` is only reached through a `RegistryGuard`, which exists only
// while `locked` is held by its thread (taken with Acquire, released with Release),
// so accesses never overlap and each sees the previous holder's writes; `Started` is
// `Send` (a `G` is).
unsafe impl Sync for Registry {}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            locked: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            entries: UnsafeCell::new(Vec::new()),
        }
    }
}

impl Registry {
    /// Takes the lock, spinning then yielding while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> RegistryGuard<'_> {
        if self.locked.swap(true, Ordering::Acquire) {
            self.lock_slow();
        }
        RegistryGuard(self)
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }

    /// How many coroutines it holds (a snapshot). Acquire: what its worker did before
    /// changing it (counting a coroutine finished) is visible after.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// The registry, locked.
pub(crate) struct RegistryGuard<'a>(&'a Registry);

impl Deref for RegistryGuard<'_> {
    type Target = Vec<Started>;
    #[inline]
    fn deref(&self) -> &Vec<Started> {
        // SAFETY: we hold the lock (see `Sync`), so no other reference exists.
        unsafe { &*self.0.entries.get() }
    }
}

impl DerefMut for RegistryGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<Started> {
        // SAFETY: as in `deref`; `&mut self` makes this the only one through us.
        unsafe { &mut *self.0.entries.get() }
    }
}

impl Drop for RegistryGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.len.store(self.len(), Ordering::Release);
        self.0.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_and_counts() {
        let r = std::sync::Arc::new(Registry::default());
        let inside = std::sync::Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let (r, inside) = (r.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let _g = r.lock();
                        // Nobody else may be inside at the same time.
                        assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                        std::hint::spin_loop();
                        inside.fetch_sub(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(r.len(), 0);
    }
}
