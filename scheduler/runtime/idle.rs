//! Which workers sleep, which search, and whom to wake: the idle protocol.
//!
//! `state` packs two counts, `unparked << 16 | searching`. A worker looks for work in
//! other workers' queues ("searches") only while `2 * searching < unparked`, so at most
//! half the awake workers spin. Pushing portable work wakes a sleeper only when nobody
//! searches (a searcher will find the work) and someone sleeps.
//!
//! Why no wakeup is lost (the Dekker pattern; both sides are SeqCst):
//! - the pusher publishes the task, then (`fence(SeqCst)`) reads `state`;
//! - a worker going to sleep updates `state` (SeqCst RMW), then re-reads every queue.
//!
//! One of the two sees the other: either the pusher sees the sleeper (or a searcher)
//! and acts, or the sleeper sees the task and does not sleep. A searcher that finds
//! work and was the last one searching wakes another sleeper, so that work that
//! arrived while everyone was busy still gets a searcher (Go's `resetspinning`).
//! Work bound to one worker (a started coroutine woken from elsewhere) does not go
//! through here: it is pushed to that worker's inbox and that worker is unparked.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::sync::Mutex;

const UNPARKED_SHIFT: usize = 16;
const SEARCH_MASK: usize = (1 << UNPARKED_SHIFT) - 1;

pub(crate) struct Idle {
    state: AtomicUsize,
    /// Indices of the workers asleep and waiting to be notified.
    sleepers: Mutex<Vec<usize>>,
    workers: usize,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            state: AtomicUsize::new(workers << UNPARKED_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    fn unpack(s: usize) -> (usize, usize) {
        (s >> UNPARKED_SHIFT, s & SEARCH_MASK)
    }

    /// Becomes a searcher if fewer than half the awake workers search.
    pub(crate) fn try_start_searching(&self) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        let (unparked, searching) = Self::unpack(s);
        if 2 * searching >= unparked {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Stops searching; true if this was the last searcher.
    pub(crate) fn stop_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        prev & SEARCH_MASK == 1
    }

    /// Registers worker `me` as asleep (it must not be searching).
    pub(crate) fn go_to_sleep(&self, me: usize) {
        let mut sl = self.sleepers.lock();
        self.state.fetch_sub(1 << UNPARKED_SHIFT, Ordering::SeqCst);
        sl.push(me);
    }

    /// Called by a worker that woke up. Returns true if it was picked by
    /// [`Idle::worker_to_notify`] (it is then counted as searching), false if it woke
    /// for its own reasons (timer, inbox, spurious) and has now unregistered itself.
    pub(crate) fn wake_up(&self, me: usize) -> bool {
        let mut sl = self.sleepers.lock();
        match sl.iter().position(|&w| w == me) {
            Some(i) => {
                sl.swap_remove(i);
                self.state.fetch_add(1 << UNPARKED_SHIFT, Ordering::SeqCst);
                false
            }
            None => true,
        }
    }

    /// After publishing portable work: a sleeper to wake, if waking one is needed.
    /// The chosen worker is counted awake and searching before it runs.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        fence(Ordering::SeqCst);
        if !self.should_notify() {
            return None;
        }
        let mut sl = self.sleepers.lock();
        if !self.should_notify() {
            return None;
        }
        let w = sl.pop()?;
        self.state
            .fetch_add((1 << UNPARKED_SHIFT) | 1, Ordering::SeqCst);
        Some(w)
    }

    fn should_notify(&self) -> bool {
        let (unparked, searching) = Self::unpack(self.state.load(Ordering::SeqCst));
        searching == 0 && unparked < self.workers
    }

    /// Every sleeper, for shutdown.
    pub(crate) fn sleepers_snapshot(&self) -> Vec<usize> {
        self.sleepers.lock().clone()
    }

    /// (awake, searching) right now, for metrics and tests.
    pub(crate) fn counts(&self) -> (usize, usize) {
        Self::unpack(self.state.load(Ordering::SeqCst))
    }
}
