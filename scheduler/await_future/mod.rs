//! [`await_future`](crate::await_future): a `Future` waited on by a coroutine.

#[cfg(feature = "tokio")]
mod bridge;

use crate::sched::park::{self, Waiter};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The waker's state: who to unpark.
///
/// A waker may outlive the wait it was made for (tokio keeps wakers in its reactor
/// and timers, in the tasks a future spawned): it holds the coroutine's task, not
/// its stack, and unparking a coroutine that has finished does nothing, nor does
/// one whose runtime has gone (a finished or leaked coroutine is never queued
/// again); a coroutine that waits on something else by then takes it as a
/// spurious wake-up, which every wait re-checks.
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
/// Futures that need no reactor (channels, combinators) work as they are.
///
/// **Futures that need tokio** (its sockets, timers, `tokio::spawn`: hyper's
/// client, tokio-postgres, sqlx, redis's async API, tonic): with the cargo feature
/// `tokio`, each poll runs inside the context of a tokio runtime that corun starts
/// for the caller's runtime at its first `await_future` (one tokio worker thread,
/// which drives the IO and timers and runs what the future spawns; shut down when
/// the corun runtime is dropped, after its coroutines have unwound). Plain threads
/// use the tokio context they are already in, else one tokio runtime of the
/// process. Without the feature, spawn such a future on a tokio runtime of your own
/// and wait on its `JoinHandle`.
///
/// With the feature, a coroutine must not wait on corun inside the future (a corun
/// channel, lock, `sleep`, `join`, or a nested `await_future` that has to wait): it
/// would switch coroutines while tokio's context is entered, so it panics saying
/// so. Await tokio's or executor-independent primitives inside the future, and call
/// corun's between `await_future` calls. A tokio `Handle::block_on` inside the
/// future panics (tokio's "Cannot start a runtime from within a runtime");
/// elsewhere in a coroutine it blocks the worker, and sysmon names the coroutine
/// and points here.
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
    #[cfg(feature = "tokio")]
    let tokio = bridge::Tokio::for_caller();
    loop {
        #[cfg(feature = "tokio")]
        let polled = tokio.poll(fut.as_mut(), &mut cx);
        #[cfg(not(feature = "tokio"))]
        let polled = fut.as_mut().poll(&mut cx);
        if let Poll::Ready(v) = polled {
            return v;
        }
        // Returns after a wake (or spuriously): polling again is always correct.
        park::park(park::Reason::Future, None, park::Cancel::Point);
    }
}
