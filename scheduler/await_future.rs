//! [`await_future`](crate::await_future): a `Future` waited on by a coroutine.

use crate::sched::park::{self, Waiter};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The waker's state: who to unpark.
struct Unparker(Waiter);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Parks the calling coroutine (freeing its worker) until `fut` completes, and
/// returns its output. On a plain thread it blocks the thread the same way.
///
/// The future is polled on the caller's stack with a [`Waker`] that unparks the
/// caller; a wake that comes before the park is kept as a token, so none is lost.
/// Futures that need no reactor (channels, combinators) work as they are; a future
/// that needs a reactor, such as tokio's IO or timers, must be driven by its
/// runtime: spawn it there and wait on the join handle.
///
/// A cancellation point while it waits: a cancelled coroutine unwinds from it,
/// dropping the future.
///
/// ```
/// let h = corun::spawn(|| corun::await_future(async { 40 + 2 }));
/// assert_eq!(h.join().unwrap(), 42);
///
/// // On a plain thread too.
/// assert_eq!(corun::await_future(std::future::ready("ok")), "ok");
/// ```
pub fn await_future<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unparker(Waiter::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        // Returns after a wake (or spuriously): polling again is always correct.
        park::park(park::Reason::Future, None, park::Cancel::Point);
    }
}
