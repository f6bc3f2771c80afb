//! Cancellation: [`JoinHandle::cancel`](crate::JoinHandle::cancel) and the
//! cancellation points where a coroutine asked to stop starts unwinding.
//!
//! Cancelling sets `Header::cancel` and unparks the coroutine. The flag is never
//! cleared: every cancellation point the coroutine reaches afterwards raises
//! [`Cancelled`] again (unless it is already unwinding), so catching it only
//! postpones the end. An unstarted coroutine whose flag is set is dropped by the
//! worker that would have started it (`Worker::start`).

use super::park;
use super::task::{Header, G};
use std::sync::atomic::Ordering;

/// The panic payload of a coroutine unwound by corun: its `join()` returns
/// `Err(payload)` with `payload.downcast_ref::<Cancelled>()` set.
///
/// A coroutine is cancelled by [`JoinHandle::cancel`](crate::JoinHandle::cancel), or
/// when its runtime is dropped while it is alive. It then stops at its next
/// **cancellation point**, a call that would wait:
///
/// - [`park`](crate::park), [`park_timeout`](crate::park_timeout),
/// - [`yield_now`](crate::yield_now),
/// - [`sleep`](crate::sleep), [`sleep_until`](crate::sleep_until) (even for a zero
///   duration),
/// - [`JoinHandle::join`](crate::JoinHandle::join) and
///   [`ScopedJoinHandle::join`](crate::ScopedJoinHandle::join) (even when the
///   other coroutine has already ended),
/// - and everything built on them, including those calls made by a [`Generator`]'s
///   body while a coroutine runs it (the generator's stack unwinds too).
///
/// At that point the call does not return: it starts unwinding the coroutine's
/// stack with `std::panic::resume_unwind(Box::new(Cancelled))`, so no panic message
/// is printed and every destructor runs (guards release their locks, files close).
/// Code that catches the unwind with `catch_unwind` and carries on is cancelled
/// again at the next cancellation point. While the coroutine is already unwinding
/// (a destructor that sleeps or yields), cancellation points do nothing. The end of
/// a [`scope`](crate::scope) waits for its coroutines even when cancelled, as they
/// borrow from its stack. A coroutine that never reaches a cancellation point (a
/// busy loop) is not interrupted, and ends however it ends.
///
/// [`Generator`]: crate::Generator
///
/// ```
/// use std::time::Duration;
/// let h = corun::spawn(|| {
///     corun::sleep(Duration::from_secs(3600));
///     unreachable!("cancelled while asleep");
/// });
/// h.cancel();
/// let err = h.join().unwrap_err();
/// assert!(err.downcast_ref::<corun::Cancelled>().is_some());
/// ```
///
/// Dropping the runtime cancels what is still alive:
///
/// ```
/// let rt = corun::Runtime::builder().workers(1).build().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let h = rt.spawn(move || {
///     tx.send(corun::current().clone()).unwrap();
///     corun::park(); // nobody unparks it
/// });
/// let _me = rx.recv().unwrap();
/// drop(rt); // unwinds the parked coroutine
/// let err = h.join().unwrap_err();
/// assert!(err.downcast_ref::<corun::Cancelled>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("coroutine cancelled")
    }
}

/// Asks coroutine `g` to stop: sets its flag, then wakes it if it is parked so it
/// reaches the cancellation point it waits in. Returns false if it had already
/// finished, or under `panic = "abort"`, where nothing happens.
pub(crate) fn cancel(g: &G) -> bool {
    let h = &g.header;
    if cfg!(panic = "abort") || h.is_finished() {
        return false;
    }
    // Flag first: the coroutine re-checks it after every park returns.
    h.cancel.store(true, Ordering::Release);
    park::unpark(g);
    true
}

/// Unwinds the calling coroutine if it was cancelled; nothing on a plain thread.
#[inline]
pub(crate) fn checkpoint_current() {
    if let Some(p) = super::context::current_task_ptr() {
        // SAFETY: we run on the coroutine's own stack, so its task is alive.
        checkpoint(unsafe { &p.as_ref().header });
    }
}

/// Whether the coroutine was asked to stop.
#[inline]
pub(super) fn is_requested(h: &Header) -> bool {
    h.cancel.load(Ordering::Relaxed)
}

/// Unwinds the calling coroutine if it was cancelled and is not unwinding already.
///
/// "Unwinding" is `std::thread::panicking()`, which is per thread: while another
/// coroutine of this worker is suspended in the middle of its unwind, it is true
/// here too and the checkpoint does nothing. `park` then yields instead of sleeping
/// (see `park_coroutine`), so the cancellation is raised once that unwind is over.
#[inline]
pub(crate) fn checkpoint(h: &Header) {
    if h.cancel.load(Ordering::Relaxed) && !std::thread::panicking() {
        raise();
    }
}

#[cold]
fn raise() -> ! {
    // resume_unwind: no panic hook, no message; `join()` sees the payload.
    std::panic::resume_unwind(Box::new(Cancelled))
}
