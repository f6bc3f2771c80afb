//! Time: sleeping, on the worker's own timers.
//!
//! A sleeping coroutine parks with a deadline on its worker's timer heap (`sched/timers.rs`);
//! the worker fires it from its loop, or wakes for it from its sleep, so the coroutine
//! runs again on its own worker, never on a timer thread.

use crate::sched::{context, park};
use std::time::{Duration, Instant};

/// Puts the calling coroutine to sleep for at least `d`; its worker runs others
/// meanwhile. On a plain thread it sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// corun::spawn(|| corun::sleep(Duration::from_millis(20))).join().unwrap();
/// assert!(t.elapsed() >= Duration::from_millis(20));
/// ```
pub fn sleep(d: Duration) {
    sleep_until(Instant::now() + d);
}

/// Sleeps until `deadline`; see [`sleep`].
///
/// In a coroutine, `sleep` and `sleep_until` are cancellation points, even when the
/// deadline has passed: a cancelled coroutine unwinds here (see [`crate::Cancelled`]).
pub fn sleep_until(deadline: Instant) {
    crate::sched::cancel::checkpoint_current();
    if context::current_task_ptr().is_none() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    while Instant::now() < deadline {
        park::park(park::Reason::Sleep, Some(deadline), park::Cancel::Point);
    }
}
