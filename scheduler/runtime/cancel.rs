//! Cancellation points: where a coroutine asked to stop starts unwinding.

use super::task::Header;
use std::sync::atomic::Ordering;

/// The panic payload of a coroutine unwound by corun: its `join()` returns
/// `Err(payload)` with `payload.downcast_ref::<Cancelled>()` set.
///
/// Today a coroutine is cancelled when its runtime is dropped while it is alive.
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

/// Unwinds the calling coroutine if it was cancelled and is not unwinding already.
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
