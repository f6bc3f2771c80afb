//! What a context, and an operation waiting with one, can fail with.

use std::error::Error;
use std::fmt;
use std::io;

/// Why a [`Context`](super::Context) is done, as Go's `context.Canceled` and
/// `context.DeadlineExceeded`.
///
/// For sockets it travels inside an [`io::Error`] (see [`From`] below):
/// `DeadlineExceeded` has kind `TimedOut`, `Cancelled` kind `Other`; never
/// `Interrupted`, which `read_exact`, `write_all` and most retry loops take as
/// "try again" and would spin on. [`ContextError::from_io`] gets it back.
///
/// ```
/// use corun::{Context, ContextError};
/// let (ctx, cancel) = Context::background().with_cancel();
/// assert_eq!(ctx.err(), None);
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(ContextError::Cancelled));
/// let e = std::io::Error::from(ContextError::DeadlineExceeded);
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(ContextError::from_io(&e), Some(ContextError::DeadlineExceeded));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled: by its [`CancelHandle`](super::CancelHandle), by an ancestor's,
    /// or by a failing member of its [`Group`](super::Group).
    Cancelled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl ContextError {
    pub(super) const CANCELLED: usize = 1;
    pub(super) const DEADLINE: usize = 2;

    pub(super) fn from_code(code: usize) -> ContextError {
        match code {
            Self::CANCELLED => ContextError::Cancelled,
            _ => ContextError::DeadlineExceeded,
        }
    }

    /// The context error an [`io::Error`] from a socket's context form carries, if
    /// that is what it is.
    pub fn from_io(e: &io::Error) -> Option<ContextError> {
        e.get_ref()?.downcast_ref::<ContextError>().copied()
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Cancelled => "context cancelled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl Error for ContextError {}

impl From<ContextError> for io::Error {
    fn from(e: ContextError) -> io::Error {
        let kind = match e {
            ContextError::Cancelled => io::ErrorKind::Other,
            ContextError::DeadlineExceeded => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, e)
    }
}

/// Why [`Receiver::recv_ctx`](crate::chan::Receiver::recv_ctx) received nothing.
///
/// ```
/// use corun::context::RecvCtxError;
/// use corun::{Context, ContextError};
/// let (tx, rx) = corun::chan::unbounded::<u8>();
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel();
/// assert_eq!(rx.recv_ctx(&ctx), Err(RecvCtxError::Context(ContextError::Cancelled)));
/// drop(tx);
/// assert!(rx.recv_ctx(&Context::background()).unwrap_err().is_disconnected());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvCtxError {
    /// The channel is empty and closed.
    Disconnected,
    /// The context was done first.
    Context(ContextError),
}

impl RecvCtxError {
    /// Whether the channel is empty and closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvCtxError::Disconnected)
    }

    /// The context's error, if the context ended the wait.
    pub fn context_error(&self) -> Option<ContextError> {
        match self {
            RecvCtxError::Context(e) => Some(*e),
            RecvCtxError::Disconnected => None,
        }
    }
}

impl fmt::Display for RecvCtxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvCtxError::Disconnected => f.write_str(
                "receiving on an empty, closed channel (its senders are all gone, or one closed it)",
            ),
            RecvCtxError::Context(e) => write!(f, "receive abandoned: {e}"),
        }
    }
}

impl Error for RecvCtxError {}

/// Why [`Sender::send_ctx`](crate::chan::Sender::send_ctx) did not send; the value
/// comes back inside, so nothing is lost.
///
/// ```
/// use corun::Context;
/// let (tx, _rx) = corun::chan::bounded(0); // nobody receives
/// let (ctx, _cancel) = Context::background().with_timeout(std::time::Duration::from_millis(5));
/// let err = tx.send_ctx(String::from("kept"), &ctx).unwrap_err();
/// assert_eq!(err.context_error(), Some(corun::ContextError::DeadlineExceeded));
/// assert_eq!(err.into_inner(), "kept");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendCtxError<T> {
    /// The channel is closed.
    Disconnected(T),
    /// The context was done first.
    Context(T, ContextError),
}

impl<T> SendCtxError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendCtxError::Disconnected(v) | SendCtxError::Context(v, _) => v,
        }
    }

    /// Whether the channel is closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendCtxError::Disconnected(_))
    }

    /// The context's error, if the context ended the wait.
    pub fn context_error(&self) -> Option<ContextError> {
        match self {
            SendCtxError::Context(_, e) => Some(*e),
            SendCtxError::Disconnected(_) => None,
        }
    }
}

impl<T> fmt::Debug for SendCtxError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCtxError::Disconnected(_) => f.write_str("Disconnected(..)"),
            SendCtxError::Context(_, e) => write!(f, "Context(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for SendCtxError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCtxError::Disconnected(_) => f.write_str(
                "sending on a closed channel (its receivers are all gone, or a sender closed it)",
            ),
            SendCtxError::Context(_, e) => write!(f, "send abandoned: {e}"),
        }
    }
}

impl<T> Error for SendCtxError<T> {}
