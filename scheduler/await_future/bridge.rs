//! The tokio bridge (feature `tokio`): the tokio runtime whose context
//! `await_future` enters around each poll, so that futures using tokio's reactor,
//! timers and `tokio::spawn` work from any coroutine. tokio has no public API for a
//! foreign reactor, so corun runs a tokio runtime of its own as the reactor.
//!
//! **Which runtime.** Each corun runtime starts one at the first `await_future` of
//! one of its coroutines (kept in `Shared::attached`: one tokio worker thread, which
//! drives IO and timers and runs what the futures spawn), and shuts it down with
//! `shutdown_background` when it is dropped, after its coroutines have unwound
//! (their futures, dropped by the unwind, still find it running). A plain thread
//! uses the tokio context it is already in, else one tokio runtime of the process,
//! started at first use and never shut down.
//!
//! **Entered for one poll at a time.** Each poll is made inside tokio's
//! `Handle::block_on` of a future that polls the caller's once, with the caller's
//! waker, and returns: tokio's context (its handle, and its mark that the thread is
//! inside a runtime) is set on the caller's stack for that poll only, so no guard
//! of tokio's spans a switch of coroutines, and a `Handle::block_on` inside the
//! future panics with tokio's message instead of blocking the worker. A corun wait
//! inside the poll would switch coroutines with that context set: the poll holds a
//! `park::NoSwitch`, which makes it panic with [`PARKED_INSIDE`] instead.

use crate::sched::context;
use crate::sched::park::{self, NoSwitch};
use crate::sched::shared::{Attached, Shared};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

/// What a coroutine that waits on corun inside a bridged poll is told.
const PARKED_INSIDE: &str = "a coroutine waited on corun (a channel, lock, sleep, join, \
    or a nested await_future that had to wait) inside a future polled by \
    corun::await_future with the `tokio` feature: it would switch coroutines while \
    tokio's context is entered for that poll. Inside the future, await tokio's or \
    executor-independent primitives (tokio::sync, tokio::time); call corun's blocking \
    operations outside it, before or after await_future";

/// A tokio runtime run by corun, and its handle.
struct Reactor {
    handle: tokio::runtime::Handle,
    rt: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Reactor {
    fn start(name: &str) -> Reactor {
        let thread_name = format!("{name}-tokio");
        // tokio makes its threads while it builds: never from a dedicated thread,
        // whose namespaces or signal mask they would inherit.
        let built = crate::sched::template::run_clean(format!("{name}-tokio-build"), move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(thread_name)
                .enable_all()
                .build()
        });
        let rt = built.and_then(|r| r).unwrap_or_else(|e| {
            panic!("corun::await_future could not start its tokio runtime (the `tokio` feature's reactor): {e}")
        });
        Reactor {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
        }
    }
}

impl Attached for Reactor {
    fn shutdown(&self) {
        let rt = self.rt.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rt) = rt {
            // Does not wait for its threads: a task stuck in a blocking call must
            // not hold up the corun runtime's drop.
            rt.shutdown_background();
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The corun runtime's reactor, started at its first use.
fn reactor_of(shared: &Shared) -> tokio::runtime::Handle {
    let a = shared
        .attached
        .get_or_init(|| Box::new(Reactor::start(&shared.name)));
    let r = a.as_any().downcast_ref::<Reactor>();
    r.expect("only the tokio bridge attaches state to a runtime")
        .handle
        .clone()
}

/// How the caller's polls meet tokio.
pub(super) enum Tokio {
    /// Each poll enters this runtime's context.
    Enter(tokio::runtime::Handle),
    /// Polled as they are: the caller is inside a tokio context already (a plain
    /// thread in one, or a nested `await_future` inside a bridged poll).
    AsIs,
}

impl Tokio {
    pub(super) fn for_caller() -> Tokio {
        if !park::may_switch() {
            return Tokio::AsIs;
        }
        if let Some(h) = context::with_worker(|w| reactor_of(&w.shared)) {
            return Tokio::Enter(h);
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Tokio::AsIs;
        }
        static PROCESS: OnceLock<Reactor> = OnceLock::new();
        Tokio::Enter(
            PROCESS
                .get_or_init(|| Reactor::start("corun"))
                .handle
                .clone(),
        )
    }

    /// Polls `fut` once with `cx`, inside the context this names.
    pub(super) fn poll<F: Future>(
        &self,
        mut fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        match self {
            Tokio::AsIs => fut.poll(cx),
            Tokio::Enter(h) => {
                let _no_switch = NoSwitch::new(PARKED_INSIDE);
                // Ready at its first poll: `block_on` only sets tokio's context
                // around the one poll of `fut` and never parks the thread.
                h.block_on(std::future::poll_fn(|_| Poll::Ready(fut.as_mut().poll(cx))))
            }
        }
    }
}
