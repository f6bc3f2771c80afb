//! Wait queues: who waits on a channel, and the one-winner claim that wakes them.
//!
//! A blocked operation (a plain `send`/`recv`, or every arm of a `select!`) is a
//! [`Selector`] on the waiting caller's stack, shared by one [`WaitEntry`] per channel it
//! waits on (Go's `sudog`s, with `selectDone` as the selector's `state`). An entry
//! holds the slot the value travels through. Queues keep raw pointers to entries;
//! every queue access happens under the channel's lock.
//!
//! The protocol, with `L` the lock of the channel the entry is queued on:
//!
//! - **Owner**: pushes its entry under `L`, then parks until `state != WAITING`.
//!   Before it returns it removes every entry it still has queued, under each lock, and
//!   it skips the lock only for the entry whose case won (the waker unlinked that one).
//!   To give up (timeout, unwinding) it must win `WAITING -> ABORTED` first; if that
//!   CAS fails, a waker won and the operation completed.
//! - **Waker**, under `L`: unlinks the entry, clones the owner's [`Waiter`], moves the
//!   value into (recv) or out of (send) the slot, and only then CASes
//!   `WAITING -> case + 1`. The CAS is its last access to the owner's memory: once it
//!   succeeds the owner may return and its stack frame is gone. If the CAS fails the
//!   owner is selected elsewhere or gave up; the waker undoes the slot move (the owner
//!   cannot be touching that slot: it reads a slot only after winning on its case, and
//!   removes entries only under `L`, which the waker holds) and tries the next entry.
//!   After unlocking, it unparks the clone.
//!
//! Why no wake-up is lost: the owner queues its entry and re-checks its condition in
//! one critical section of `L`, so a waker either comes before (the owner sees the
//! value/space and does not queue) or finds the entry. The waker's CAS happens before
//! its `unpark`, and the park protocol keeps a token for an unpark that comes before
//! `park`, so the owner's loop `while state == WAITING { park() }` always ends.

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use park::Waiter;
use std::collections::VecDeque;
use std::ptr::NonNull;

/// How a channel waiter sleeps and is woken: the runtime's parking protocol (a
/// coroutine frees its worker, a thread blocks). Under loom, loom's threads stand in
/// for coroutines, parking as plain threads do (`sched/park.rs`).
pub(crate) use crate::sched::park;

/// A scheduling point under loom, nothing otherwise. The owner calls it after it
/// published its entries and released the lock, before it first looks at its state:
/// loom does not preempt at a lock release, and without this it never lets a waker
/// complete the operation in that window (where the owner then reads its slot without
/// parking, ordered by the claim's CAS alone).
#[inline(always)]
pub(super) fn loom_yield() {
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Nobody has completed the operation yet.
pub(super) const WAITING: usize = 0;
/// The owner gave up (timeout or unwinding); no case may complete any more.
pub(super) const ABORTED: usize = usize::MAX;

/// One blocked operation: the caller's waiter and which of its cases won. Appears in
/// the hidden API the `select!` macro expands to; not for direct use.
pub struct Selector {
    state: AtomicUsize,
    waiter: Waiter,
}

impl Selector {
    /// A selector for the calling coroutine or thread.
    pub(crate) fn new() -> Selector {
        Selector {
            state: AtomicUsize::new(WAITING),
            waiter: Waiter::current(),
        }
    }

    /// The case that completed, `Some(ABORTED)` if the owner gave up, `None` while
    /// waiting. Acquire: a winning case's slot is readable once this returns it.
    #[inline]
    pub(super) fn selected(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            WAITING => None,
            ABORTED => Some(ABORTED),
            s => Some(s - 1),
        }
    }

    /// The owner gives up; `false` if a case won first (then it completed).
    #[inline]
    pub(super) fn try_abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Makes the selector waitable again after an abort, once no entry refers to it.
    #[inline]
    pub(super) fn reset(&mut self) {
        // `&mut self`: nobody else can see it, so a relaxed store is enough.
        self.state.store(WAITING, Ordering::Relaxed);
    }

    #[inline]
    fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }
}

/// One queued case: which selector it belongs to and the slot the value moves through.
pub(crate) struct WaitEntry<T> {
    sel: *const Selector,
    case: usize,
    /// recv: `None` until a sender puts a value (stays `None` on disconnect).
    /// send: the value until a receiver takes it (stays `Some` on disconnect).
    slot: UnsafeCell<Option<T>>,
}

impl<T> WaitEntry<T> {
    /// An entry holding `value` in its slot, not yet tied to a selector.
    pub(crate) fn new(value: Option<T>) -> WaitEntry<T> {
        WaitEntry {
            sel: std::ptr::null(),
            case: 0,
            slot: UnsafeCell::new(value),
        }
    }

    /// Ties the entry to case `case` of `sel` before it is queued.
    pub(super) fn bind(&mut self, sel: &Selector, case: usize) {
        self.sel = sel;
        self.case = case;
    }

    /// The slot, for its owner once the entry is in no queue.
    pub(super) fn slot_mut(&mut self) -> &mut Option<T> {
        // SAFETY: `&mut self`, and the entry is in no queue, so no waker can reach it.
        self.slot.with_mut(|p| unsafe { &mut *p })
    }
}

/// A FIFO of waiting entries (senders or receivers of one channel). Lives inside the
/// channel's mutex; every method is called with that lock held.
pub(super) struct WaitList<T> {
    q: VecDeque<NonNull<WaitEntry<T>>>,
}

impl<T> WaitList<T> {
    pub(crate) const fn new() -> WaitList<T> {
        WaitList { q: VecDeque::new() }
    }

    /// Queues `e`.
    ///
    /// # Safety
    /// `e` (and its selector) must stay valid, unmoved, until it is no longer in the
    /// queue: its owner removes it with [`remove`](Self::remove), or learns from its
    /// selector that a waker unlinked it.
    pub(crate) unsafe fn push(&mut self, e: NonNull<WaitEntry<T>>) {
        self.q.push_back(e);
    }

    /// Unlinks `e` if it is still queued.
    pub(super) fn remove(&mut self, e: NonNull<WaitEntry<T>>) {
        if let Some(i) = self.q.iter().position(|&x| x == e) {
            self.q.remove(i);
        }
    }

    /// Whether an entry of another selector than `me` still waits (a counterpart).
    pub(super) fn has_live(&self, me: *const Selector) -> bool {
        self.q.iter().any(|e| {
            // SAFETY: queued entries and their selectors are valid (contract of `push`),
            // and we hold the channel lock.
            let sel = unsafe { e.as_ref().sel };
            // SAFETY: as above.
            sel != me && unsafe { (*sel).is_waiting() }
        })
    }

    /// Unlinks and returns the first entry of another selector than `me` whose
    /// selector still waits, with that selector and the entry's case; stale entries
    /// met on the way are dropped from the queue.
    fn pop_live(
        &mut self,
        me: *const Selector,
    ) -> Option<(NonNull<WaitEntry<T>>, &Selector, usize)> {
        let mut i = 0;
        while i < self.q.len() {
            let e = self.q[i];
            // SAFETY: queued entries are valid (contract of `push`); we hold the lock.
            let (sel, case) = unsafe { (e.as_ref().sel, e.as_ref().case) };
            if sel == me {
                i += 1;
                continue;
            }
            // The head, nearly always: `pop_front` costs a fraction of `remove`.
            if i == 0 {
                self.q.pop_front();
            } else {
                self.q.remove(i);
            }
            // SAFETY: the selector outlives its queued entries (contract of `push`),
            // and it stays valid while its owner is parked waiting to be claimed,
            // which it is until we claim it under the lock we hold.
            let s = unsafe { &*sel };
            if s.is_waiting() {
                return Some((e, s, case));
            }
            // Stale: its owner won elsewhere or gave up.
        }
        None
    }

    /// Hands `v` to the first waiting receiver not of `me`; gives the waiter to unpark,
    /// or `v` back if nobody waits.
    pub(super) fn give(&mut self, v: T, me: *const Selector) -> Result<Waiter, T> {
        let mut v = v;
        while let Some((e, s, case)) = self.pop_live(me) {
            let waiter = s.waiter.clone();
            // SAFETY: the slot is touched only under the lock while the entry may be
            // queued, and by its owner after it won; it has not won.
            unsafe { e.as_ref().slot.with_mut(|p| *p = Some(v)) };
            if claim(s, case) {
                return Ok(waiter);
            }
            // SAFETY: the claim failed, so the owner will never read this slot and it
            // can only reach this entry under the lock we hold.
            let back = unsafe { e.as_ref().slot.with_mut(|p| (*p).take()) };
            v = back.expect("slot we just filled");
        }
        Err(v)
    }

    /// Takes the value of the first waiting sender not of `me`, with the waiter to
    /// unpark.
    pub(super) fn take(&mut self, me: *const Selector) -> Option<(T, Waiter)> {
        while let Some((e, s, case)) = self.pop_live(me) {
            let waiter = s.waiter.clone();
            // SAFETY: as in `give`: only we may touch the slot now.
            let v = unsafe { e.as_ref().slot.with_mut(|p| (*p).take()) }
                .expect("a sender's slot holds its value");
            if claim(s, case) {
                return Some((v, waiter));
            }
            // SAFETY: the claim failed; the slot is still ours to restore under the lock.
            unsafe { e.as_ref().slot.with_mut(|p| *p = Some(v)) };
        }
        None
    }

    /// Completes every waiting entry with its slot as it is (the channel is
    /// disconnected: receivers get nothing, senders keep their value) and empties the
    /// queue. Returns the waiters to unpark.
    pub(super) fn disconnect(&mut self) -> Vec<Waiter> {
        let mut woken = Vec::new();
        while let Some(e) = self.q.pop_front() {
            // SAFETY: queued entries and their selectors are valid; we hold the lock.
            let (sel, case) = unsafe { (e.as_ref().sel, e.as_ref().case) };
            // SAFETY: as above.
            let s = unsafe { &*sel };
            if !s.is_waiting() {
                continue;
            }
            let waiter = s.waiter.clone();
            if claim(s, case) {
                woken.push(waiter);
            }
        }
        woken
    }
}

/// Wins `s` for `case`. The caller must not touch the selector or its entries after
/// a success: the owner may return at once.
#[inline]
fn claim(s: &Selector, case: usize) -> bool {
    s.state
        .compare_exchange(WAITING, case + 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}
