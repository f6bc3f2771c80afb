//! The channel itself: one lock around a buffer and two wait queues (Go's `hchan`).
//!
//! All three flavours share this code: `cap == Some(0)` is a rendezvous channel (the
//! buffer stays empty and every value goes from a sender's slot to a receiver's),
//! `Some(n)` a buffer of `n`, `None` unbounded (senders never wait).
//!
//! Invariants, under the lock: a live receiver waits only while the buffer is empty,
//! and a live sender waits only while the buffer is full (or the channel has no
//! buffer). A sender that finds a waiting receiver hands the value straight to it
//! (Go's direct send), and a receiver that finds a waiting sender takes the head of
//! the buffer and moves the sender's value to its tail, so FIFO order holds.

use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::waiters::park::{self, Waiter};
use super::waiters::{loom_yield, Selector, WaitEntry, WaitList, ABORTED};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};
use crate::sched::interrupt::Until;
use std::collections::VecDeque;
use std::ptr::NonNull;

pub(super) struct Inner<T> {
    buf: VecDeque<T>,
    pub(super) recvq: WaitList<T>,
    pub(super) sendq: WaitList<T>,
    /// No value will come any more: every `Sender` is gone, or one called `close`.
    closed: bool,
    /// Sends fail: every `Receiver` is gone, or a `Sender` called `close`.
    sends_fail: bool,
}

// SAFETY: the queues hold pointers to entries whose values are `T`s moved between
// threads only under the channel lock; with `T: Send` that is a plain move of a `T`.
unsafe impl<T: Send> Send for Inner<T> {}

pub(super) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    cap: Option<usize>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Bumped under the lock whenever an operation of the other side may have become
    /// possible (a value buffered or taken, a waiter queued, an end gone): a spinning
    /// waiter watches it instead of the lock.
    version: AtomicUsize,
}

/// Backoff steps that spin (2^k pause hints each) before a waiter parks...
const SPIN_STEPS: u32 = 7;
/// ...and all steps, the rest yielding the thread (crossbeam's `Backoff` shape).
const BACKOFF_STEPS: u32 = 17;

/// Which queue an entry waits in.
#[derive(Clone, Copy)]
pub(super) enum Side {
    Send,
    Recv,
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            inner: Mutex::new(Inner {
                buf: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                recvq: WaitList::new(),
                sendq: WaitList::new(),
                closed: false,
                sends_fail: false,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            version: AtomicUsize::new(0),
        }
    }

    pub(super) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    /// Under the lock: whether the buffer takes one more value.
    #[inline]
    fn has_room(&self, g: &Inner<T>) -> bool {
        match self.cap {
            None => true,
            Some(c) => g.buf.len() < c,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().buf.len()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    /// Records, under the lock, that the other side may now proceed.
    #[inline]
    pub(super) fn bump(&self) {
        // Only the lock holder writes it: a load and a store, no read-modify-write.
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Release);
    }

    /// Before parking, backs off while nothing changes and the worker has nothing else
    /// to do: spins 2^k pause hints for the first `SPIN_STEPS` steps, then yields the
    /// thread (which lets a counterpart sharing this CPU run), up to `BACKOFF_STEPS`
    /// steps in all across the operation (`*step` keeps count). `seen` is the version
    /// read under the lock when the operation failed. Returns `true` if the channel
    /// changed (retry the operation), `false` when it is time to park.
    fn backoff(&self, seen: usize, step: &mut u32) -> bool {
        while *step < BACKOFF_STEPS {
            if !park::may_spin() {
                *step = BACKOFF_STEPS;
                return false;
            }
            if *step < SPIN_STEPS {
                for _ in 0..1u32 << *step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
            *step += 1;
            if self.version.load(Ordering::Acquire) != seen {
                return true;
            }
        }
        false
    }

    pub(super) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Ordering::Relaxed);
    }

    /// The last `Sender` went away: wake every waiting receiver with nothing.
    pub(super) fn drop_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let woken = {
                let mut g = self.inner.lock();
                g.closed = true;
                self.bump();
                g.recvq.disconnect()
            };
            woken.iter().for_each(Waiter::unpark);
        }
    }

    /// The last `Receiver` went away: wake every waiting sender with its value.
    pub(super) fn drop_receiver(&self) {
        if self.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let (woken, _drained) = {
                let mut g = self.inner.lock();
                g.sends_fail = true;
                self.bump();
                // Nobody can receive these any more; drop them outside the lock.
                (g.sendq.disconnect(), std::mem::take(&mut g.buf))
            };
            woken.iter().for_each(Waiter::unpark);
        }
    }

    /// Closes the channel while senders remain (Go's `close`): receivers drain what
    /// is buffered then see it closed; waiting and later sends fail with their
    /// value. Returns false if it was closed already.
    pub(super) fn close(&self) -> bool {
        let woken = {
            let mut g = self.inner.lock();
            if g.closed && g.sends_fail {
                return false;
            }
            g.closed = true;
            g.sends_fail = true;
            self.bump();
            let mut woken = g.recvq.disconnect();
            woken.extend(g.sendq.disconnect());
            woken
        };
        woken.iter().for_each(Waiter::unpark);
        true
    }

    /// Under the lock: whether the given side could complete now for a selector `me`.
    pub(super) fn ready(&self, g: &Inner<T>, side: Side, me: *const Selector) -> bool {
        match side {
            Side::Recv => !g.buf.is_empty() || g.closed || g.sendq.has_live(me),
            Side::Send => g.sends_fail || self.has_room(g) || g.recvq.has_live(me),
        }
    }

    /// Under the lock: sends `v` if that needs no waiting. Returns the waiter to
    /// unpark once the lock is released.
    #[inline]
    pub(super) fn try_send_locked(
        &self,
        g: &mut Inner<T>,
        v: T,
        me: *const Selector,
    ) -> Result<Option<Waiter>, TrySendError<T>> {
        if g.sends_fail {
            return Err(TrySendError::Disconnected(v));
        }
        let v = match g.recvq.give(v, me) {
            Ok(w) => return Ok(Some(w)),
            Err(v) => v,
        };
        if self.has_room(g) {
            g.buf.push_back(v);
            self.bump();
            Ok(None)
        } else {
            Err(TrySendError::Full(v))
        }
    }

    /// Under the lock: receives if that needs no waiting. Returns the value and the
    /// waiter to unpark once the lock is released.
    #[inline]
    pub(super) fn try_recv_locked(
        &self,
        g: &mut Inner<T>,
        me: *const Selector,
    ) -> Result<(T, Option<Waiter>), TryRecvError> {
        if let Some(v) = g.buf.pop_front() {
            self.bump();
            // A slot opened: move a waiting sender's value in behind the others.
            if self.cap != Some(0) {
                if let Some((sv, w)) = g.sendq.take(me) {
                    g.buf.push_back(sv);
                    return Ok((v, Some(w)));
                }
            }
            return Ok((v, None));
        }
        if let Some((v, w)) = g.sendq.take(me) {
            return Ok((v, Some(w)));
        }
        if g.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(super) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let r = {
            let mut g = self.inner.lock();
            self.try_send_locked(&mut g, v, std::ptr::null())
        };
        r.map(|w| {
            if let Some(w) = w {
                w.unpark();
            }
        })
    }

    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let r = {
            let mut g = self.inner.lock();
            self.try_recv_locked(&mut g, std::ptr::null())
        };
        r.map(|(v, w)| {
            if let Some(w) = w {
                w.unpark();
            }
            v
        })
    }

    /// Sends, waiting for room or a receiver until `until` passes (`Timeout`).
    pub(crate) fn send(&self, v: T, until: Until<'_>) -> Result<(), SendTimeoutError<T>> {
        crate::sched::budget::consume();
        let mut step = 0;
        let mut v = v;
        let g = loop {
            let mut g = self.inner.lock();
            v = match self.try_send_locked(&mut g, v, std::ptr::null()) {
                Ok(w) => {
                    drop(g);
                    if let Some(w) = w {
                        w.unpark();
                    }
                    return Ok(());
                }
                Err(TrySendError::Disconnected(v)) => {
                    return Err(SendTimeoutError::Disconnected(v))
                }
                Err(TrySendError::Full(v)) => v,
            };
            if until.passed() {
                return Err(SendTimeoutError::Timeout(v));
            }
            // A worker with other coroutines to run parks at once, keeping the
            // lock: backing off would only take it again to fail once more.
            if step >= BACKOFF_STEPS || !park::may_spin() {
                break g;
            }
            let seen = self.version.load(Ordering::Relaxed);
            drop(g);
            self.backoff(seen, &mut step);
        };
        let mut entry = WaitEntry::new(Some(v));
        let won = self.wait_for_peer(g, Side::Send, &mut entry, until);
        let slot = entry.slot_mut().take();
        match (won, slot) {
            (true, None) => Ok(()),
            (true, Some(v)) => Err(SendTimeoutError::Disconnected(v)),
            (false, Some(v)) => Err(SendTimeoutError::Timeout(v)),
            (false, None) => unreachable!("an aborted send keeps its value"),
        }
    }

    /// Queues `entry` on `side`'s wait list (the lock `g` is held), releases the lock
    /// and parks until a peer completes the operation (`true`) or `until` passes
    /// and it is withdrawn (`false`). The entry is in no list when this returns.
    fn wait_for_peer(
        &self,
        mut g: MutexGuard<'_, Inner<T>>,
        side: Side,
        entry: &mut WaitEntry<T>,
        until: Until<'_>,
    ) -> bool {
        let sel = Selector::new();
        entry.bind(&sel, 0);
        let mut wait = Wait {
            chan: self,
            side,
            sel: &sel,
            entry: NonNull::from(entry),
        };
        // SAFETY: the caller's `entry` and this frame's `sel` outlive `wait`, which is
        // dropped before this returns, and `Wait::drop` unlinks the entry unless a
        // waker already did (see waiters.rs); the entry's selector pointer is not
        // used once it is in no list.
        unsafe {
            match side {
                Side::Send => g.sendq.push(wait.entry),
                Side::Recv => g.recvq.push(wait.entry),
            }
        };
        self.bump();
        drop(g);
        let won = wait.park(until);
        drop(wait);
        won
    }

    /// Receives, waiting for a value until `until` passes (`Timeout`).
    pub(crate) fn recv(&self, until: Until<'_>) -> Result<T, RecvTimeoutError> {
        crate::sched::budget::consume();
        let mut step = 0;
        let g = loop {
            let mut g = self.inner.lock();
            match self.try_recv_locked(&mut g, std::ptr::null()) {
                Ok((v, w)) => {
                    drop(g);
                    if let Some(w) = w {
                        w.unpark();
                    }
                    return Ok(v);
                }
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if until.passed() {
                return Err(RecvTimeoutError::Timeout);
            }
            // A worker with other coroutines to run parks at once, keeping the
            // lock: backing off would only take it again to fail once more.
            if step >= BACKOFF_STEPS || !park::may_spin() {
                break g;
            }
            let seen = self.version.load(Ordering::Relaxed);
            drop(g);
            self.backoff(seen, &mut step);
        };
        let mut entry = WaitEntry::new(None);
        let won = self.wait_for_peer(g, Side::Recv, &mut entry, until);
        match (won, entry.slot_mut().take()) {
            (true, Some(v)) => Ok(v),
            (true, None) => Err(RecvTimeoutError::Disconnected),
            (false, _) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Unlinks `e` from the queue of `side` if it is still there.
    pub(super) fn unlink(&self, side: Side, e: NonNull<WaitEntry<T>>) {
        let mut g = self.inner.lock();
        match side {
            Side::Send => g.sendq.remove(e),
            Side::Recv => g.recvq.remove(e),
        }
    }
}

/// A single queued operation: parks until it completes, and on every way out (timeout,
/// unwinding) leaves no entry behind.
struct Wait<'a, T> {
    chan: &'a Chan<T>,
    side: Side,
    sel: &'a Selector,
    entry: NonNull<WaitEntry<T>>,
}

impl<T> Wait<'_, T> {
    /// Parks until a waker completes the operation (`true`) or `until` passes and
    /// the operation is withdrawn (`false`).
    fn park(&mut self, until: Until<'_>) -> bool {
        loom_yield();
        let reason = match self.side {
            Side::Send => park::Reason::ChanSend,
            Side::Recv => park::Reason::ChanRecv,
        };
        let _watch = until.watch();
        loop {
            if let Some(s) = self.sel.selected() {
                return s != ABORTED;
            }
            if until.is_never() {
                park::park(reason, None, park::Cancel::Point);
                continue;
            }
            if until.passed() {
                if self.sel.try_abort() {
                    return false;
                }
                continue; // a waker won just now
            }
            park::park(reason, until.deadline, park::Cancel::Point);
        }
    }
}

impl<T> Drop for Wait<'_, T> {
    fn drop(&mut self) {
        // Completed by a waker: it unlinked the entry, nothing to do (no lock taken).
        // Otherwise (aborted on timeout, or unwinding out of `park`), take it out.
        if self.sel.selected() == Some(ABORTED) || self.sel.try_abort() {
            self.chan.unlink(self.side, self.entry);
        }
    }
}
