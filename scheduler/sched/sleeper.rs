//! How a worker thread sleeps: a one-token parker, as `std::thread::park`.
//!
//! `unpark` before `park` makes that `park` return at once, so a worker that is about
//! to sleep cannot miss the wake-up of the work that was just pushed to it.
//!
//! A worker sleeps one of two ways: on its condition variable, or, when it holds
//! the netpoller, blocked in the poller (`park_polling`), so that IO readiness wakes
//! it too. `unpark` then interrupts the poller through its waker instead:
//!
//! ```text
//!            park (cvar)                 park_polling
//!   EMPTY ---------------> PARKED    EMPTY -------------> POLLING
//!     ^   unpark: notify cvar |        ^  unpark: wake poller |
//!     +------- NOTIFIED <-----+        +------- NOTIFIED <----+
//! ```

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Condvar, Mutex};
use std::time::Instant;

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;
const POLLING: usize = 3;

pub(crate) struct Sleeper {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Sleeper {
    pub(crate) fn new() -> Sleeper {
        Sleeper {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    /// Sleeps until `unpark` or `deadline`. Only the owning worker calls this.
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
        let mut g = self.lock.lock();
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(_) => {
                // NOTIFIED arrived between the two checks: consume it.
                self.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
        }
        loop {
            match deadline {
                None => self.cvar.wait(&mut g),
                Some(d) => {
                    let now = Instant::now();
                    if d <= now || self.cvar.wait_timeout(&mut g, d - now) {
                        // Timed out: leave PARKED whatever the state is now.
                        self.state.swap(EMPTY, Ordering::SeqCst);
                        return;
                    }
                }
            }
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Sleeps in the poller: `wait` blocks until an IO event, `deadline`, or the
    /// poller's waker, which `unpark` calls while this worker is in there.
    pub(super) fn park_polling(
        &self,
        deadline: Option<Instant>,
        wait: impl FnOnce(Option<Instant>),
    ) {
        if self
            .state
            .compare_exchange(EMPTY, POLLING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // NOTIFIED: consume it and do not sleep.
            self.state.store(EMPTY, Ordering::SeqCst);
            return;
        }
        wait(deadline);
        // Awake: a token that arrived meanwhile is consumed too (the worker re-checks
        // everything before it sleeps again); a waker call it caused is a spurious
        // return of some later poll, which is harmless.
        self.state.swap(EMPTY, Ordering::SeqCst);
    }

    /// Wakes the worker, or makes its next `park` return at once. `wake_poller`
    /// interrupts the poller if the worker is blocked in it.
    pub(crate) fn unpark(&self, wake_poller: impl FnOnce()) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            POLLING => wake_poller(),
            _ => {
                // Take the lock so the notify cannot slip between the sleeper's state
                // check and its wait.
                drop(self.lock.lock());
                self.cvar.notify_one();
            }
        }
    }
}
