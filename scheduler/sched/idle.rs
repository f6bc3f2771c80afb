//! Which workers sleep, which search, and whom to wake: the idle protocol.
//!
//! `state` packs two counts, `unparked << 16 | searching`. A worker looks for work in
//! other workers' queues ("searches") only while `2 * searching < unparked`, so at most
//! half the awake workers spin. Pushing portable work wakes a sleeper only when nobody
//! searches (a searcher will find the work) and someone sleeps.
//!
//! Why no wakeup is lost (the Dekker pattern, a store then a load on each side, so
//! each side has a `fence(SeqCst)` between them):
//! - the pusher publishes the task, `fence(SeqCst)`, then reads `state`;
//! - a worker going to sleep updates `state`, `fence(SeqCst)`, then re-reads every queue.
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
    /// Ms started: the workers, plus the extra Ms sysmon starts.
    workers: AtomicUsize,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            state: AtomicUsize::new(workers << UNPARKED_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers: AtomicUsize::new(workers),
        }
    }

    fn unpack(s: usize) -> (usize, usize) {
        (s >> UNPARKED_SHIFT, s & SEARCH_MASK)
    }

    /// Becomes a searcher if fewer than half the awake workers search.
    pub(super) fn try_start_searching(&self) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        let (unparked, searching) = Self::unpack(s);
        if 2 * searching >= unparked {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Stops searching; true if this was the last searcher.
    pub(super) fn stop_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        prev & SEARCH_MASK == 1
    }

    /// A searcher found work: stops searching, and returns true if it was the last
    /// searcher and `portable_work` says work others could take is waiting (then
    /// the caller wakes a sleeper). Work a pusher published while this searcher
    /// searched woke nobody (`should_notify` saw a searcher); the fence orders the
    /// decrement before the look, so either the pusher sees no searcher and wakes
    /// someone itself, or this look sees its work. Work only the finder can run
    /// (its own IO or inbox) wakes nobody: a sleeper could not take it.
    pub(super) fn found_work(&self, portable_work: impl FnOnce() -> bool) -> bool {
        if !self.stop_searching() {
            return false;
        }
        fence(Ordering::SeqCst);
        portable_work()
    }

    /// Registers worker `me` as asleep (it must not be searching).
    fn go_to_sleep(&self, me: usize) {
        let mut sl = self.sleepers.lock();
        self.state.fetch_sub(1 << UNPARKED_SHIFT, Ordering::SeqCst);
        sl.push(me);
    }

    /// The whole sleep of worker `me` (not searching): register as a sleeper,
    /// re-check for work, park until unparked or `deadline`, unregister. Returns true
    /// if it was woken to search (it is then counted as a searcher).
    /// `park` is the sleep itself: the worker's `Sleeper`, plain or in the poller.
    pub(super) fn sleep(
        &self,
        me: usize,
        has_work: impl FnOnce() -> bool,
        park: impl FnOnce(),
    ) -> bool {
        self.go_to_sleep(me);
        // Work pushed before we registered is seen here; work pushed after finds us
        // registered. Both sides need a SeqCst fence between their write and their
        // read (store-load): the pusher's is in `worker_to_notify`.
        fence(Ordering::SeqCst);
        if !has_work() {
            park();
        }
        self.wake_up(me)
    }

    /// Called by a worker that woke up. Returns true if it was picked by
    /// [`Idle::worker_to_notify`] (it is then counted as searching), false if it woke
    /// for its own reasons (timer, inbox, spurious) and has now unregistered itself.
    fn wake_up(&self, me: usize) -> bool {
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
    pub(super) fn worker_to_notify(&self) -> Option<usize> {
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
        searching == 0 && unparked < self.workers.load(Ordering::SeqCst)
    }

    /// A new M (sysmon's extra thread) joins, awake.
    pub(super) fn add_m(&self) {
        let _sl = self.sleepers.lock();
        self.workers.fetch_add(1, Ordering::SeqCst);
        self.state.fetch_add(1 << UNPARKED_SHIFT, Ordering::SeqCst);
    }

    /// How many Ms are asleep now.
    pub(super) fn sleeping(&self) -> usize {
        self.sleepers.lock().len()
    }

    /// (awake, searching) right now, for tests.
    #[cfg(all(test, loom))]
    pub(super) fn counts(&self) -> (usize, usize) {
        Self::unpack(self.state.load(Ordering::SeqCst))
    }

    /// (awake, searching) right now, for schedtrace (a snapshot).
    pub(crate) fn snapshot(&self) -> (usize, usize) {
        Self::unpack(self.state.load(Ordering::Relaxed))
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/idle.rs"]
mod loom_tests;
