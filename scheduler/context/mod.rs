//! Go's `context` and `errgroup`: cancellation and deadlines that travel with the
//! work, and a group of coroutines that fails together.
//!
//! A [`Context`] is cheap to clone and says when the work it is given to should
//! stop: when its [`CancelHandle`] is used, when its deadline passes, or when an
//! ancestor's does. Derive one with [`Context::with_cancel`],
//! [`Context::with_timeout`] or [`Context::with_deadline`] from
//! [`Context::background`] (never done) or from another context.
//!
//! Blocking operations have a **context form** that waits at most as long as the
//! context lives and then returns its error (they never unwind):
//!
//! | operation | context form | fails with |
//! |---|---|---|
//! | `rx.recv()` | [`rx.recv_ctx(&ctx)`](crate::chan::Receiver::recv_ctx) | [`RecvCtxError`] |
//! | `tx.send(v)` | [`tx.send_ctx(v, &ctx)`](crate::chan::Sender::send_ctx) | [`SendCtxError`] (the value inside) |
//! | `sleep(d)` | [`sleep_ctx(d, &ctx)`](crate::sleep_ctx) | [`ContextError`] |
//! | `m.lock()` | [`m.lock_ctx(&ctx)`](crate::sync::Mutex::lock_ctx) | [`ContextError`] |
//! | `s.acquire()` | [`s.acquire_ctx(&ctx)`](crate::sync::Semaphore::acquire_ctx) | [`ContextError`] |
//! | `l.accept()` | [`l.accept_ctx(&ctx)`](crate::net::TcpListener::accept_ctx) | `io::Error` carrying a [`ContextError`] |
//! | `TcpStream::connect(a)` | [`TcpStream::connect_ctx(a, &ctx)`](crate::net::TcpStream::connect_ctx) | the same |
//! | `s.read(buf)`, `s.write(buf)` | [`s.read_ctx(buf, &ctx)`](crate::net::TcpStream::read_ctx), [`write_ctx`](crate::net::TcpStream::write_ctx), [`write_all_ctx`](crate::net::TcpStream::write_all_ctx) | the same |
//! | `Read`/`Write` of a stream | [`WithContext::new(&s, &ctx)`](WithContext) | the same |
//!
//! The socket forms exist for `TcpListener`/`TcpStream` and `UnixListener`/`UnixStream`.
//!
//! A form given a context that is already done fails at once, without trying the
//! operation. Anything else can wait on [`Context::done`] in a [`select!`](crate::select).
//! The forms work in coroutines and on plain threads, as the operations do. A
//! [`Group`] runs coroutines that share a context cancelled by the first to fail.
//!
//! ```
//! use corun::{chan, Context, ContextError};
//! use std::time::Duration;
//!
//! let (_tx, rx) = chan::bounded::<u32>(0); // nothing ever comes
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
//! let h = corun::go!(move || rx.recv_ctx(&ctx));
//! let err = h.join().unwrap().unwrap_err();
//! assert_eq!(err.context_error(), Some(ContextError::DeadlineExceeded));
//! ```
//!
//! How it works: a context's node holds an interrupt (`sched/interrupt.rs`) that a
//! context form registers its waiter with; cancelling fires it, which unparks every
//! registered waiter, and the form parks with the context's deadline, so a deadline
//! needs no timer of its own. [`Context::done`] makes its channel on first use, and
//! for a context with a deadline one timer coroutine that closes it then.

mod error;
mod forms;
mod group;
mod node;

pub use error::{ContextError, RecvCtxError, SendCtxError};
pub use forms::{sleep_ctx, WithContext};
pub use group::Group;

use crate::chan::{self, Receiver, Sender};
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Mutex;
use crate::sched::interrupt::{Interrupt, Slab, Until};
use node::{start_timer, Node, State};
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// A cancellation and a deadline, handed to work that should stop with them: Go's
/// `context.Context` (without values). Cloning is one reference count.
///
/// A derived context is done when its [`CancelHandle`] is used, when its deadline
/// passes, or when its parent is done, whichever comes first; its
/// [`err`](Context::err) says which kind. It registers with its parent and
/// unregisters when its last clone is dropped, so a long-lived parent does not
/// grow with the children it had.
///
/// ```
/// use corun::{Context, ContextError};
/// let root = Context::background();
/// let (parent, cancel) = root.with_cancel();
/// let (child, _) = parent.with_timeout(std::time::Duration::from_secs(60));
/// assert!(child.deadline().is_some());
/// cancel.cancel();
/// assert_eq!(child.err(), Some(ContextError::Cancelled)); // the parent's cancel reaches it
/// assert_eq!(root.err(), None);
/// ```
#[derive(Clone, Default)]
pub struct Context {
    /// `None`: the background context, never done.
    node: Option<Arc<Node>>,
}

/// Cancels the context it came with (and that context's descendants), as Go's
/// `CancelFunc`. Cancelling twice, or after the context is done, does nothing.
/// Dropping the handle does not cancel.
#[derive(Clone)]
pub struct CancelHandle {
    node: Weak<Node>,
}

impl Context {
    /// The root context: never cancelled, no deadline (Go's `context.Background()`).
    /// Costs nothing: it holds no allocation.
    pub fn background() -> Context {
        Context { node: None }
    }

    /// A child that is done when `cancel` is called on the returned handle, or when
    /// this context is done.
    ///
    /// ```
    /// let (ctx, cancel) = corun::Context::background().with_cancel();
    /// let h = corun::go!(move || corun::sleep_ctx(std::time::Duration::from_secs(60), &ctx));
    /// cancel.cancel();
    /// assert_eq!(h.join().unwrap(), Err(corun::ContextError::Cancelled));
    /// ```
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        self.derive(None)
    }

    /// A child whose deadline is `timeout` from now (or this context's, if earlier).
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        self.derive(Instant::now().checked_add(timeout))
    }

    /// A child whose deadline is `deadline` (or this context's, if earlier).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let at = Instant::now() + Duration::from_millis(5);
    /// let (ctx, _cancel) = corun::Context::background().with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// corun::sleep(Duration::from_millis(10));
    /// assert_eq!(ctx.err(), Some(corun::ContextError::DeadlineExceeded));
    /// ```
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        self.derive(Some(deadline))
    }

    fn derive(&self, deadline: Option<Instant>) -> (Context, CancelHandle) {
        let parent = self.node.clone();
        let deadline = Until::at(deadline)
            .or_at(parent.as_ref().and_then(|p| p.deadline))
            .deadline;
        let node = Arc::new_cyclic(|me: &Weak<Node>| {
            let in_parent = parent.as_ref().and_then(|p| {
                let mut st = p.state.lock();
                (p.intr.code() == 0).then(|| st.children.insert(me.clone()))
            });
            Node {
                parent,
                deadline,
                intr: Arc::new(Interrupt::new()),
                state: Mutex::new(State {
                    children: Slab::new(),
                    in_parent,
                    done_tx: None,
                }),
                done: OnceLock::new(),
                timer: AtomicBool::new(false),
            }
        });
        if let Some(p) = &node.parent {
            // A parent cancelled while this node was being built could not reach
            // it (its weak reference did not upgrade yet): look again, under the
            // parent's lock, now that it can.
            let code = {
                let _st = p.state.lock();
                p.intr.code()
            };
            if code != 0 {
                node.cancel(code);
            }
        }
        let cancel = CancelHandle {
            node: Arc::downgrade(&node),
        };
        (Context { node: Some(node) }, cancel)
    }

    /// Why the context is done, or `None` while it is not (Go's `ctx.Err()`). A
    /// passed deadline is seen here even before any timer fired.
    pub fn err(&self) -> Option<ContextError> {
        let n = self.node.as_ref()?;
        let code = match n.intr.code() {
            0 if n.deadline.is_some_and(|d| Instant::now() >= d) => {
                n.cancel(ContextError::DEADLINE);
                n.intr.code()
            }
            code => code,
        };
        (code != 0).then(|| ContextError::from_code(code))
    }

    /// Whether the context is done.
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// `Err` once the context is done: `ctx.check()?` between steps of long work.
    pub fn check(&self) -> Result<(), ContextError> {
        self.err().map_or(Ok(()), Err)
    }

    /// The instant the context will be done by, if it has a deadline (its own or an
    /// ancestor's).
    pub fn deadline(&self) -> Option<Instant> {
        self.node.as_ref()?.deadline
    }

    /// A channel that is closed when the context is done (Go's `ctx.Done()`): a
    /// `recv` on it returns `Err` from then on, so it works as a [`select!`](crate::select)
    /// arm. Nothing is ever sent on it. The channel is made on first use; for a
    /// context with a deadline, so is one timer coroutine that closes it then
    /// (contexts that never call `done` cost no timer). The background context's
    /// never closes.
    ///
    /// ```
    /// use corun::{chan, Context};
    /// use std::time::Duration;
    /// let (_tx, work) = chan::bounded::<u32>(0); // no work ever comes
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
    /// let stopped = corun::select! {
    ///     recv(work) -> _ => false,
    ///     recv(ctx.done()) -> _ => true,
    /// };
    /// assert!(stopped);
    /// assert_eq!(ctx.err(), Some(corun::ContextError::DeadlineExceeded));
    /// ```
    pub fn done(&self) -> &Receiver<()> {
        let Some(n) = &self.node else {
            static NEVER: OnceLock<(Sender<()>, Receiver<()>)> = OnceLock::new();
            return &NEVER.get_or_init(|| chan::bounded(0)).1;
        };
        // Nothing in here may park: another coroutine of this thread could be
        // waiting on the `OnceLock`.
        let rx = n.done.get_or_init(|| {
            let (tx, rx) = chan::bounded(0);
            let mut st = n.state.lock();
            if n.intr.code() == 0 {
                st.done_tx = Some(tx);
            } else {
                drop(st);
                drop(tx);
            }
            rx
        });
        if let Some(d) = n.deadline {
            if self.err().is_none()
                && !n.timer.load(Ordering::Relaxed)
                && !n.timer.swap(true, Ordering::AcqRel)
            {
                start_timer(n, d);
            }
        }
        rx
    }

    /// What a wait with this context gives up at (the context forms).
    pub(crate) fn until(&self) -> Until<'_> {
        match &self.node {
            None => Until::NEVER,
            Some(n) => Until {
                deadline: n.deadline,
                interrupt: Some(&n.intr),
            },
        }
    }

    /// The error after a wait with [`until`](Self::until) gave up: the interrupt
    /// fired or the deadline passed, so there is one.
    pub(crate) fn err_after_wait(&self) -> ContextError {
        self.err().unwrap_or(ContextError::DeadlineExceeded)
    }

    /// Registered children (tests).
    #[cfg(test)]
    fn children(&self) -> usize {
        self.node
            .as_ref()
            .map_or(0, |n| n.state.lock().children.len())
    }
}

impl CancelHandle {
    /// Cancels the context and its descendants: their [`err`](Context::err)
    /// becomes [`ContextError::Cancelled`] (unless they were done already), their
    /// `done()` channels close and their waiting context forms return.
    pub fn cancel(&self) {
        if let Some(n) = self.node.upgrade() {
            n.cancel(ContextError::CANCELLED);
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("deadline", &self.deadline())
            .field("err", &self.err())
            .finish()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CancelHandle { .. }")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn dropped_children_unregister() {
        let (parent, _cancel) = Context::background().with_cancel();
        for _ in 0..100_000 {
            let (child, _c) = parent.with_cancel();
            let (grandchild, _) = child.with_timeout(Duration::from_secs(60));
            drop(child); // the grandchild keeps it registered...
            assert_eq!(parent.children(), 1);
            drop(grandchild); // ...until it goes too
        }
        assert_eq!(parent.children(), 0);
        let kept: Vec<_> = (0..10).map(|_| parent.with_cancel()).collect();
        assert_eq!(parent.children(), 10);
        kept[3].1.cancel(); // a cancelled child leaves at once
        assert_eq!(parent.children(), 9);
        drop(kept);
        assert_eq!(parent.children(), 0);
    }

    #[test]
    fn done_timer_ends_with_the_context() {
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
        let intr = ctx.node.as_ref().unwrap().intr.clone();
        let _ = ctx.done();
        // The timer registers with the interrupt once it runs.
        let t = Instant::now();
        while intr.waiters() == 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(intr.waiters(), 1);
        drop(ctx);
        assert_ne!(intr.code(), 0, "dropping the context ends its timer");
        let t = Instant::now();
        while Arc::strong_count(&intr) > 1 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(&intr), 1, "the timer coroutine ended");
    }
}
