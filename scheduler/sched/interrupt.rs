//! Interrupts: a wait that also ends when something else says so (a
//! `corun::Context` being cancelled).
//!
//! An [`Interrupt`] is a code (0 until it fires) and the waiters to wake when it
//! fires. A wait that honours one takes an [`Until`] instead of a bare deadline:
//! it registers its [`Waiter`] first ([`Until::watch`]), then loops as a deadline
//! wait does, giving up once [`Until::passed`]. [`Interrupt::fire`] sets the code
//! under the waiter lock and registration looks at the code under that lock, so
//! either the firing sees the waiter (and unparks it: the park token keeps an early
//! wake) or the waiter sees the code. Plain waits pass [`Until::NEVER`] and pay
//! nothing more than a second `None` test on their way to parking.

use super::park::Waiter;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::time::Instant;

/// Values kept under small integer keys reused after removal (a slab).
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn insert(&mut self, v: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(k) => {
                self.items[k] = Some(v);
                k
            }
            None => {
                self.items.push(Some(v));
                self.items.len() - 1
            }
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let v = self.items.get_mut(key)?.take()?;
        self.len -= 1;
        if self.len == 0 {
            // Empty again: give back what a burst grew, so a long-lived owner
            // does not keep its high-water mark.
            *self = Slab::new();
        } else {
            self.free.push(key);
        }
        Some(v)
    }

    /// Takes every value out, leaving the slab empty.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        let items = std::mem::take(self).items;
        items.into_iter().flatten().collect()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

/// Something that can fire once, waking everyone waiting with it in their [`Until`].
pub(crate) struct Interrupt {
    code: AtomicUsize,
    waiters: Mutex<Slab<Waiter>>,
}

impl Interrupt {
    pub(crate) fn new() -> Interrupt {
        Interrupt {
            code: AtomicUsize::new(0),
            waiters: Mutex::new(Slab::new()),
        }
    }

    /// The code it fired with, 0 if it has not.
    #[inline]
    pub(crate) fn code(&self) -> usize {
        self.code.load(Ordering::Acquire)
    }

    /// Fires with `code` (not 0) and wakes every registered waiter; returns false,
    /// doing nothing, if it had fired already.
    pub(crate) fn fire(&self, code: usize) -> bool {
        debug_assert_ne!(code, 0);
        let woken = {
            let mut w = self.waiters.lock();
            if self.code.load(Ordering::Relaxed) != 0 {
                return false;
            }
            self.code.store(code, Ordering::Release);
            w.take_all()
        };
        woken.iter().for_each(Waiter::unpark);
        true
    }

    /// Registered waiters now (for tests).
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.lock().len()
    }
}

/// When a wait gives up: at a deadline, when an interrupt fires, or never.
#[derive(Clone, Copy, Default)]
pub(crate) struct Until<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) interrupt: Option<&'a Interrupt>,
}

impl<'a> Until<'a> {
    /// Wait as long as it takes.
    pub(crate) const NEVER: Until<'static> = Until {
        deadline: None,
        interrupt: None,
    };

    /// Give up at `deadline`, if there is one.
    #[inline]
    pub(crate) fn at(deadline: Option<Instant>) -> Until<'static> {
        Until {
            deadline,
            interrupt: None,
        }
    }

    /// The same, giving up at `deadline` too if that comes first.
    #[inline]
    pub(crate) fn or_at(self, deadline: Option<Instant>) -> Until<'a> {
        let deadline = match (self.deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Until { deadline, ..self }
    }

    /// Nothing ends the wait but its own condition.
    #[inline]
    pub(crate) fn is_never(&self) -> bool {
        self.deadline.is_none() && self.interrupt.is_none()
    }

    /// Whether the wait should give up now.
    #[inline]
    pub(crate) fn passed(&self) -> bool {
        self.interrupt.is_some_and(|i| i.code() != 0)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Registers the caller with the interrupt, if any, until the guard drops. Call
    /// it before the first [`passed`](Self::passed) of the wait loop.
    pub(crate) fn watch(&self) -> Option<Watch<'a>> {
        let interrupt = self.interrupt?;
        let mut w = interrupt.waiters.lock();
        if interrupt.code.load(Ordering::Relaxed) != 0 {
            return None; // the wait loop sees the code and gives up
        }
        let key = w.insert(Waiter::current());
        Some(Watch { interrupt, key })
    }
}

/// A registration with an [`Interrupt`]; dropping it takes the waiter out.
pub(crate) struct Watch<'a> {
    interrupt: &'a Interrupt,
    key: usize,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // After a fire the slab is empty and takes no more waiters, so the key
        // cannot name somebody else's registration.
        let w = self.interrupt.waiters.lock().remove(self.key);
        drop(w); // a coroutine's last reference may go here: outside the lock
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slab_reuses_and_shrinks() {
        let mut s = Slab::new();
        let a = s.insert(1);
        let b = s.insert(2);
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.remove(a), None);
        let c = s.insert(3);
        assert_eq!(c, a);
        assert_eq!(s.len(), 2);
        s.remove(b);
        s.remove(c);
        assert_eq!(s.items.capacity(), 0);
        assert_eq!(s.insert(4), 0);
    }

    #[test]
    fn fire_once_and_watch_after_fire() {
        let i = Interrupt::new();
        let u = Until {
            deadline: None,
            interrupt: Some(&i),
        };
        let w = u.watch();
        assert!(w.is_some());
        assert_eq!(i.waiters(), 1);
        assert!(!u.passed());
        assert!(i.fire(1));
        assert!(!i.fire(2));
        assert_eq!(i.code(), 1);
        assert!(u.passed());
        assert_eq!(i.waiters(), 0);
        drop(w);
        assert!(u.watch().is_none());
    }
}
