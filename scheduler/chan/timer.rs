//! Timer channels: [`after`] and [`tick`], as Go's `time.After` and `time.Tick`.
//!
//! Each timer is a coroutine sleeping on its worker's timer heap (no thread per timer,
//! no CPU while it sleeps) that sends into a channel of capacity 1. It runs on the
//! caller's runtime, or on the default runtime when called from a plain thread.

use super::{bounded, Receiver};
use std::time::{Duration, Instant};

/// A channel that receives the time once, after `d`, as Go's `time.After`. Its
/// sender is gone after that, so a second `recv` fails.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let (_tx, rx) = corun::chan::unbounded::<()>();
/// let timeout = corun::chan::after(Duration::from_millis(20));
/// let timed_out = corun::select! {
///     recv(rx) -> _ => false,
///     recv(timeout) -> at => at.unwrap() >= start + Duration::from_millis(20),
/// };
/// assert!(timed_out);
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    let (tx, rx) = bounded(1);
    let at = Instant::now() + d;
    let spawned = crate::Builder::new()
        .name("corun::chan::after")
        .spawn(move || {
            crate::sleep_until(at);
            let _ = tx.try_send(Instant::now());
        });
    // A runtime shutting down cannot run the timer: the receiver sees a closed channel.
    drop(spawned);
    rx
}

/// A channel that receives the time every `d`, as Go's `time.Tick`. A slow receiver
/// misses ticks rather than queueing them (the buffer holds one). The ticker stops
/// once every receiver is gone (at its next tick).
///
/// # Panics
/// If `d` is zero.
///
/// ```
/// use std::time::Duration;
/// let ticks = corun::chan::tick(Duration::from_millis(5));
/// let mut last = ticks.recv().unwrap();
/// for _ in 0..3 {
///     let t = ticks.recv().unwrap();
///     assert!(t > last);
///     last = t;
/// }
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    assert!(
        !d.is_zero(),
        "corun::chan::tick: the period must not be zero"
    );
    let (tx, rx) = bounded(1);
    let start = Instant::now();
    let spawned = crate::Builder::new()
        .name("corun::chan::tick")
        .spawn(move || {
            let mut next = start + d;
            loop {
                crate::sleep_until(next);
                let now = Instant::now();
                if tx.try_send(now).is_err_and(|e| e.is_disconnected()) {
                    return;
                }
                next += d;
                if next <= now {
                    // Fell behind (a busy worker): skip the missed ticks.
                    let behind = (now - next).as_nanos() / d.as_nanos() + 1;
                    next += d * behind as u32;
                }
            }
        });
    drop(spawned);
    rx
}
