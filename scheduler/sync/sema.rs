//! The wait queue every sync primitive parks on, and a counting semaphore built on it.
//!
//! Each primitive embeds a [`WaitQueue`]: a short-held lock around a FIFO of waiting
//! nodes (Go's `semaRoot`, one per primitive instead of a table keyed by address). The
//! primitive's own state word lives outside the queue; the queue lets it change that
//! word *under the queue lock* at the two moments that matter:
//!
//! - a waiter enqueues itself, then runs `validate` under the lock (after a
//!   `fence(SeqCst)`) and sleeps only if it says so: "the lock is still held, and I have
//!   set the PARKED bit", "still no permit", ...;
//! - a waker looks at the front node under the lock and decides, in its callback, which
//!   token to hand it (`HANDOFF`: you own the lock/permit now; `RETRY`: compete again)
//!   and what the state word becomes, knowing whether more waiters remain.
//!
//! A waiter's node carries that token; the waker stores it under the lock, then unparks
//! the waiter after releasing the lock. The waiter loops on `park` until it sees a token,
//! so a spurious return is harmless and an early unpark is kept by the park token.
//! Because the decision to sleep and the decision to wake are both taken under the one
//! queue lock, one of the two always sees the other: no wake-up is lost (the loom
//! models below check this for the mutex and the semaphore).
//!
//! Waiting goes through a small [`Park`] trait: the runtime's [`Waiter`] (a coroutine
//! parks and frees its worker, a thread blocks) and, in the loom models, loom's threads.
//!
//! Cancellation: `park` may unwind (runtime shutdown). The node's drop guard then takes
//! the queue lock: if no token was given yet the node is removed (and `on_leave` fixes
//! the state word, e.g. clears PARKED when the queue became empty); if a token was
//! given, `on_cancel(token)` passes on what was handed over (unlocks the lock, returns
//! the permit, wakes another waiter).

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::sched::interrupt::Until;
use crate::sched::park::{Reason, Waiter};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// After waiting this long, a waiter is handed the lock directly (Go's starvation mode).
pub(super) const FAIR_AFTER: Duration = Duration::from_millis(1);

/// The token of a node nobody has woken yet.
const WAITING: usize = 0;
/// You own what you waited for (the lock, a permit).
pub(super) const HANDOFF: usize = 1;
/// Try again: the state changed, compete for it.
pub(super) const RETRY: usize = 2;

/// How a waiter sleeps and is woken.
pub(super) trait Park: Clone {
    /// How long a waiter waits before it gets the lock handed over.
    const FAIR_AFTER: Duration = FAIR_AFTER;
    /// The caller.
    fn current() -> Self;
    /// Wakes this waiter, or makes its next park return at once.
    fn unpark(&self);
    /// Parks the caller (may return spuriously; may unwind when cancelled), waiting
    /// on `reason` (shown by `corun::dump`).
    fn park(reason: Reason);
    /// As [`Park::park`], returning by `deadline` at the latest.
    fn park_until(deadline: Instant, reason: Reason);
}

impl Park for Waiter {
    #[inline]
    fn current() -> Self {
        Waiter::current()
    }
    #[inline]
    fn unpark(&self) {
        Waiter::unpark(self)
    }
    #[inline]
    fn park(reason: Reason) {
        crate::sched::park::park(reason, None, crate::sched::park::Cancel::Point)
    }
    #[inline]
    fn park_until(deadline: Instant, reason: Reason) {
        crate::sched::park::park(reason, Some(deadline), crate::sched::park::Cancel::Point)
    }
}

struct Node<P> {
    waiter: P,
    token: AtomicUsize,
    /// When this waiter first started waiting (kept when it re-queues).
    since: Instant,
}

/// What a waker sees of the front waiter.
#[derive(Clone, Copy, Debug)]
pub(super) struct Front {
    /// Waiters remain behind this one.
    pub(super) more: bool,
    /// It has waited longer than [`Park::FAIR_AFTER`].
    pub(super) starving: bool,
}

/// How a [`WaitQueue::wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wake {
    /// `validate` said not to sleep.
    Invalid,
    /// Woken with this token; `since` is when the wait first began.
    Woken { token: usize, since: Instant },
    /// The deadline passed (or the interrupt fired) first: the node was removed,
    /// `on_leave` ran.
    TimedOut,
}

/// A FIFO of parked waiters behind a short lock. See the module docs.
pub(super) struct WaitQueue<P: Park = Waiter> {
    nodes: Mutex<VecDeque<Arc<Node<P>>>>,
    /// Number of queued nodes, readable without the lock.
    len: AtomicUsize,
}

impl<P: Park> Default for WaitQueue<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a wait starts.
#[derive(Clone, Copy, Default)]
pub(super) struct WaitOpts<'a> {
    /// Give up at this deadline or when this interrupt fires.
    pub(super) until: Until<'a>,
    /// Re-queue at the front, keeping this start time (a woken waiter that lost the
    /// race goes back first in line, as Go's `queueLifo`).
    pub(super) requeue_since: Option<Instant>,
    /// What the waiter waits on, for `corun::dump`.
    pub(crate) reason: Reason,
}

impl<P: Park> WaitQueue<P> {
    crate::loom::const_unless_loom! {
        pub(crate) fn new() -> Self {
            WaitQueue {
                nodes: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }
    }

    /// Whether nobody waits (a hint: exact only when paired with a fence or a lock).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Queues the caller, runs `validate` under the queue lock (after a `fence(SeqCst)`
    /// that orders the enqueue before whatever `validate` reads), and if it returns true
    /// runs `before_sleep` (outside the lock) and parks until woken with a token or the
    /// deadline passes. If `validate` returns false the node is taken out again and
    /// nothing else runs.
    ///
    /// `on_leave(empty)` runs under the lock when the node leaves without a token
    /// (timeout, or cancellation); `on_cancel(token)` runs without the lock when the
    /// caller unwinds out of `park` after it was given `token`.
    pub(crate) fn wait(
        &self,
        opts: WaitOpts<'_>,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        on_leave: impl FnOnce(bool),
        on_cancel: impl FnOnce(usize),
    ) -> Wake {
        let node = Arc::new(Node {
            waiter: P::current(),
            token: AtomicUsize::new(WAITING),
            since: opts.requeue_since.unwrap_or_else(Instant::now),
        });
        {
            let mut q = self.nodes.lock();
            if opts.requeue_since.is_some() {
                q.push_front(node.clone());
            } else {
                q.push_back(node.clone());
            }
            self.len.store(q.len(), Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !validate() {
                Self::remove(&mut q, &node);
                self.len.store(q.len(), Ordering::SeqCst);
                return Wake::Invalid;
            }
        }
        let mut guard = Enqueued {
            queue: self,
            node: &node,
            on_leave: Some(on_leave),
            on_cancel: Some(on_cancel),
        };
        before_sleep();
        let until = opts.until;
        let _watch = until.watch();
        loop {
            let token = node.token.load(Ordering::Acquire);
            if token != WAITING {
                guard.disarm();
                return Wake::Woken {
                    token,
                    since: node.since,
                };
            }
            if until.is_never() {
                P::park(opts.reason);
                continue;
            }
            if until.passed() {
                let on_leave = guard.on_leave.take();
                guard.disarm();
                return match self.leave(&node, on_leave) {
                    None => Wake::TimedOut,
                    Some(token) => Wake::Woken {
                        token,
                        since: node.since,
                    },
                };
            }
            match until.deadline {
                Some(d) => P::park_until(d, opts.reason),
                None => P::park(opts.reason),
            }
        }
    }

    fn remove(q: &mut VecDeque<Arc<Node<P>>>, node: &Arc<Node<P>>) {
        if let Some(i) = q.iter().position(|n| Arc::ptr_eq(n, node)) {
            q.remove(i);
        }
    }

    /// Takes `node` out if it was not woken (running `on_leave(empty)` under the lock)
    /// and returns None; else returns its token.
    fn leave(&self, node: &Arc<Node<P>>, on_leave: Option<impl FnOnce(bool)>) -> Option<usize> {
        let mut q = self.nodes.lock();
        let token = node.token.load(Ordering::Acquire);
        if token != WAITING {
            return Some(token);
        }
        Self::remove(&mut q, node);
        self.len.store(q.len(), Ordering::SeqCst);
        if let Some(f) = on_leave {
            f(q.is_empty());
        }
        None
    }

    /// Looks at the front waiter under the lock: `decide(Some(front))` returns the token
    /// to wake it with, or None to leave it queued; `decide(None)` is called when the
    /// queue is empty. Returns true if a waiter was woken.
    pub(super) fn wake_one(&self, decide: impl FnOnce(Option<Front>) -> Option<usize>) -> bool {
        let mut q = self.nodes.lock();
        let front = q.front().map(|n| Front {
            more: q.len() > 1,
            starving: n.since.elapsed() >= P::FAIR_AFTER,
        });
        let Some(token) = decide(front) else {
            return false;
        };
        let Some(node) = q.pop_front() else {
            return false;
        };
        self.len.store(q.len(), Ordering::SeqCst);
        node.token.store(token, Ordering::Release);
        drop(q);
        node.waiter.unpark();
        true
    }

    /// Wakes every queued waiter with `token`; returns how many.
    pub(super) fn wake_all(&self, token: usize) -> usize {
        let nodes = {
            let mut q = self.nodes.lock();
            self.len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *q)
        };
        let n = nodes.len();
        for node in &nodes {
            node.token.store(token, Ordering::Release);
        }
        // Unpark outside the lock, after every token is set.
        for node in nodes {
            node.waiter.unpark();
        }
        n
    }
}

/// Drop guard of a queued node: runs only if `park` unwinds.
struct Enqueued<'a, P: Park, L: FnOnce(bool), C: FnOnce(usize)> {
    queue: &'a WaitQueue<P>,
    node: &'a Arc<Node<P>>,
    on_leave: Option<L>,
    on_cancel: Option<C>,
}

impl<P: Park, L: FnOnce(bool), C: FnOnce(usize)> Enqueued<'_, P, L, C> {
    fn disarm(&mut self) {
        self.on_cancel = None;
        self.on_leave = None;
    }
}

impl<P: Park, L: FnOnce(bool), C: FnOnce(usize)> Drop for Enqueued<'_, P, L, C> {
    fn drop(&mut self) {
        let Some(on_cancel) = self.on_cancel.take() else {
            return;
        };
        if let Some(token) = self.queue.leave(self.node, self.on_leave.take()) {
            on_cancel(token);
        }
    }
}

/// A counting semaphore (Go's runtime `sema`): permits taken by CAS, waiters queued
/// FIFO, and a release hands its permit straight to the first waiter.
pub(super) struct Sema<P: Park = Waiter> {
    permits: AtomicUsize,
    queue: WaitQueue<P>,
}

impl<P: Park> Sema<P> {
    crate::loom::const_unless_loom! {
        pub(crate) fn new(permits: usize) -> Self {
            Sema {
                permits: AtomicUsize::new(permits),
                queue: WaitQueue::new(),
            }
        }
    }

    /// Permits available right now.
    pub(super) fn available(&self) -> usize {
        self.permits.load(Ordering::Acquire)
    }

    /// Takes a permit if one is free.
    #[inline]
    pub(super) fn try_acquire(&self) -> bool {
        let mut n = self.permits.load(Ordering::Relaxed);
        while n > 0 {
            match self
                .permits
                .compare_exchange_weak(n, n - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => n = actual,
            }
        }
        false
    }

    /// Takes a permit, parking on `reason` until one is handed over.
    pub(super) fn acquire(&self, reason: Reason) {
        self.acquire_until(Until::NEVER, reason);
    }

    /// Takes a permit, parking on `reason` until one is handed over or `until`
    /// passes; returns whether it got one.
    pub(crate) fn acquire_until(&self, until: Until<'_>, reason: Reason) -> bool {
        if self.try_acquire() {
            return true;
        }
        let opts = WaitOpts {
            until,
            requeue_since: None,
            reason,
        };
        loop {
            match self.queue.wait(
                opts,
                // Enqueued and fenced: a release that came before sees us or left a
                // permit we see here.
                || !self.try_acquire(),
                || {},
                |_| {},
                |token| {
                    if token == HANDOFF {
                        // Handed a permit while unwinding: pass it on.
                        self.release(1);
                    }
                },
            ) {
                Wake::Invalid => return true,
                Wake::Woken { token: HANDOFF, .. } => return true,
                Wake::Woken { .. } => {
                    if self.try_acquire() {
                        return true;
                    }
                }
                Wake::TimedOut => return self.try_acquire(),
            }
        }
    }

    /// Adds `n` permits, handing each to a waiter while there are waiters.
    pub(super) fn release(&self, n: usize) {
        self.permits.fetch_add(n, Ordering::SeqCst);
        // Store-load against the waiter's enqueue-fence-check.
        fence(Ordering::SeqCst);
        for _ in 0..n {
            if self.queue.is_empty() {
                return;
            }
            let woke = self.queue.wake_one(|front| {
                // Take a permit on the waiter's behalf, under the lock, only if there is
                // a waiter; if a barger took it first, the waiter stays queued.
                front.and_then(|_| self.try_acquire().then_some(HANDOFF))
            });
            if !woke {
                return;
            }
        }
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/sema.rs"]
pub(super) mod loom_tests;
