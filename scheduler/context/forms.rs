//! The context forms of corun's blocking operations: `<operation>_ctx`, taking the
//! context last. Each checks the context first, then runs the operation's own
//! wait with the context's deadline and interrupt (`Until`), and turns a wait that
//! gave up into the context's error.
//!
//! They are inherent methods of the channel, lock and socket types written here,
//! above those modules, through the `*_until` forms each exposes to the crate.

use super::{Context, ContextError, RecvCtxError, SendCtxError};
use crate::chan::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use crate::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use crate::sched::{cancel, park};
use crate::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

impl<T> Receiver<T> {
    /// As [`recv`](Self::recv), giving up when `ctx` is done: Go's
    /// `select { case v := <-ch: case <-ctx.Done(): }`.
    ///
    /// ```
    /// use corun::context::RecvCtxError;
    /// use corun::{Context, ContextError};
    /// let (tx, rx) = corun::chan::unbounded();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_ctx(&ctx), Ok(1));
    /// let h = corun::go!(move || rx.recv_ctx(&ctx));
    /// cancel.cancel();
    /// assert_eq!(h.join().unwrap(), Err(RecvCtxError::Context(ContextError::Cancelled)));
    /// ```
    pub fn recv_ctx(&self, ctx: &Context) -> Result<T, RecvCtxError> {
        ctx.check().map_err(RecvCtxError::Context)?;
        self.recv_until(ctx.until()).map_err(|e| match e {
            RecvTimeoutError::Disconnected => RecvCtxError::Disconnected,
            RecvTimeoutError::Timeout => RecvCtxError::Context(ctx.err_after_wait()),
        })
    }
}

impl<T> Sender<T> {
    /// As [`send`](Self::send), giving up when `ctx` is done; the value comes back
    /// in the error either way.
    ///
    /// ```
    /// use corun::Context;
    /// let (tx, rx) = corun::chan::bounded(1);
    /// let ctx = Context::background();
    /// tx.send_ctx(1, &ctx).unwrap();
    /// let (ctx, cancel) = ctx.with_cancel();
    /// cancel.cancel();
    /// assert_eq!(tx.send_ctx(2, &ctx).unwrap_err().into_inner(), 2);
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_ctx(&self, value: T, ctx: &Context) -> Result<(), SendCtxError<T>> {
        if let Some(e) = ctx.err() {
            return Err(SendCtxError::Context(value, e));
        }
        self.send_until(value, ctx.until()).map_err(|e| match e {
            SendTimeoutError::Disconnected(v) => SendCtxError::Disconnected(v),
            SendTimeoutError::Timeout(v) => SendCtxError::Context(v, ctx.err_after_wait()),
        })
    }
}

/// As [`sleep`](crate::sleep), ending early with the context's error when `ctx` is
/// done first; `Ok` once `d` has passed. A cancellation point, as `sleep` is.
///
/// ```
/// use std::time::Duration;
/// let (ctx, cancel) = corun::Context::background().with_timeout(Duration::from_secs(60));
/// assert_eq!(corun::sleep_ctx(Duration::from_millis(1), &ctx), Ok(()));
/// let h = corun::go!(move || corun::sleep_ctx(Duration::from_secs(60), &ctx));
/// cancel.cancel();
/// assert_eq!(h.join().unwrap(), Err(corun::ContextError::Cancelled));
/// ```
pub fn sleep_ctx(d: Duration, ctx: &Context) -> Result<(), ContextError> {
    let end = Instant::now().checked_add(d);
    cancel::checkpoint_current();
    ctx.check()?;
    let until = ctx.until();
    let _watch = until.watch();
    loop {
        if end.is_some_and(|e| Instant::now() >= e) {
            return Ok(());
        }
        if until.passed() {
            return Err(ctx.err_after_wait());
        }
        let wake = until.or_at(end).deadline;
        park::park(park::Reason::Sleep, wake, park::Cancel::Point);
    }
}

impl<T: ?Sized> Mutex<T> {
    /// As [`lock`](Self::lock), giving up when `ctx` is done.
    ///
    /// ```
    /// use corun::{sync::Mutex, Context, ContextError};
    /// use std::time::Duration;
    /// let m = Mutex::new(0);
    /// let _held = m.lock();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    /// assert_eq!(m.lock_ctx(&ctx).unwrap_err(), ContextError::DeadlineExceeded);
    /// ```
    pub fn lock_ctx(&self, ctx: &Context) -> Result<MutexGuard<'_, T>, ContextError> {
        ctx.check()?;
        self.lock_until(ctx.until())
            .ok_or_else(|| ctx.err_after_wait())
    }
}

impl Semaphore {
    /// As [`acquire`](Self::acquire), giving up when `ctx` is done.
    ///
    /// ```
    /// use corun::{sync::Semaphore, Context, ContextError};
    /// let s = Semaphore::new(0);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert_eq!(s.acquire_ctx(&ctx).unwrap_err(), ContextError::Cancelled);
    /// ```
    pub fn acquire_ctx(&self, ctx: &Context) -> Result<SemaphorePermit<'_>, ContextError> {
        ctx.check()?;
        self.acquire_until(ctx.until())
            .ok_or_else(|| ctx.err_after_wait())
    }
}

/// `write_ctx` and `write_all_ctx` of a stream type that has `write_until`.
macro_rules! stream_forms {
    () => {
        /// As `write`, giving up when `ctx` is done; see `read_ctx`.
        pub fn write_ctx(&self, buf: &[u8], ctx: &Context) -> io::Result<usize> {
            net_op(ctx, || self.write_until(buf, ctx.until()))
        }

        /// As `write_all`, giving up when `ctx` is done (part of `buf` may have
        /// been written).
        pub fn write_all_ctx(&self, mut buf: &[u8], ctx: &Context) -> io::Result<()> {
            while !buf.is_empty() {
                match self.write_ctx(buf, ctx)? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => buf = &buf[n..],
                }
            }
            Ok(())
        }
    };
}

/// Runs a socket operation with `ctx`: fails at once if it is done, and turns the
/// `WouldBlock`/`TimedOut` of a wait that `ctx` ended into its error. (A socket
/// timeout that expires first keeps its own error.)
fn net_op<R>(ctx: &Context, op: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
    ctx.check()?;
    op().map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => match ctx.err() {
            Some(c) => c.into(),
            None => e,
        },
        _ => e,
    })
}

impl TcpListener {
    /// As [`accept`](Self::accept), giving up when `ctx` is done with an
    /// `io::Error` carrying its [`ContextError`] (kind `TimedOut` for a deadline).
    ///
    /// ```
    /// use corun::{net::TcpListener, Context, ContextError};
    /// use std::time::Duration;
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    /// let e = l.accept_ctx(&ctx).unwrap_err(); // nobody connects
    /// assert_eq!(ContextError::from_io(&e), Some(ContextError::DeadlineExceeded));
    /// ```
    pub fn accept_ctx(&self, ctx: &Context) -> io::Result<(TcpStream, SocketAddr)> {
        net_op(ctx, || self.accept_until(ctx.until()))
    }
}

impl TcpStream {
    /// As [`connect`](Self::connect), giving up when `ctx` is done (name
    /// resolution, on the blocking pool, is not interrupted).
    pub fn connect_ctx<A: ToSocketAddrs + Sync>(addr: A, ctx: &Context) -> io::Result<TcpStream> {
        net_op(ctx, || TcpStream::connect_until(addr, ctx.until()))
    }

    /// As `read`, giving up when `ctx` is done. The socket's read timeout, if
    /// set, still applies (`WouldBlock` when it expires first). On a plain thread,
    /// a cancellation is noticed within 10 ms (`poll(2)` cannot be woken for it).
    ///
    /// ```
    /// use corun::net::{TcpListener, TcpStream};
    /// use corun::{Context, ContextError};
    /// use std::time::Duration;
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    /// let e = s.read_ctx(&mut [0u8; 16], &ctx).unwrap_err(); // the peer never writes
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// assert_eq!(ContextError::from_io(&e), Some(ContextError::DeadlineExceeded));
    /// ```
    pub fn read_ctx(&self, buf: &mut [u8], ctx: &Context) -> io::Result<usize> {
        net_op(ctx, || self.read_until(buf, ctx.until()))
    }

    stream_forms!();
}

impl UnixListener {
    /// As [`accept`](Self::accept), giving up when `ctx` is done; see
    /// [`TcpListener::accept_ctx`].
    pub fn accept_ctx(
        &self,
        ctx: &Context,
    ) -> io::Result<(UnixStream, std::os::unix::net::SocketAddr)> {
        net_op(ctx, || self.accept_until(ctx.until()))
    }
}

impl UnixStream {
    /// As `read`, giving up when `ctx` is done; see [`TcpStream::read_ctx`].
    ///
    /// ```
    /// use corun::{net::UnixStream, Context, ContextError};
    /// let (a, _b) = UnixStream::pair().unwrap();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let h = corun::go!(move || a.read_ctx(&mut [0u8; 8], &ctx));
    /// cancel.cancel();
    /// let e = h.join().unwrap().unwrap_err();
    /// assert_eq!(ContextError::from_io(&e), Some(ContextError::Cancelled));
    /// ```
    pub fn read_ctx(&self, buf: &mut [u8], ctx: &Context) -> io::Result<usize> {
        net_op(ctx, || self.read_until(buf, ctx.until()))
    }

    stream_forms!();
}

/// A stream with a context: `Read` and `Write` through the context forms, so
/// `read_exact`, `write_all`, `BufReader`, `io::copy`... stop when the context is
/// done (with its error: never `Interrupted`, so they do not retry).
///
/// ```
/// use corun::context::WithContext;
/// use corun::net::UnixStream;
/// use corun::{Context, ContextError};
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// let (a, b) = UnixStream::pair().unwrap();
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
/// WithContext::new(&a, &ctx).write_all(b"half").unwrap();
/// let mut buf = [0u8; 8]; // wants 8 bytes, only 4 come
/// let e = WithContext::new(&b, &ctx).read_exact(&mut buf).unwrap_err();
/// assert_eq!(ContextError::from_io(&e), Some(ContextError::DeadlineExceeded));
/// ```
#[derive(Debug)]
pub struct WithContext<'a, S> {
    stream: &'a S,
    ctx: &'a Context,
}

impl<'a, S> WithContext<'a, S> {
    /// `stream`, whose reads and writes give up when `ctx` is done.
    pub fn new(stream: &'a S, ctx: &'a Context) -> WithContext<'a, S> {
        WithContext { stream, ctx }
    }
}

macro_rules! with_context_io {
    ($($t:ty),*) => {$(
        impl io::Read for WithContext<'_, $t> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream.read_ctx(buf, self.ctx)
            }
        }

        impl io::Write for WithContext<'_, $t> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.stream.write_ctx(buf, self.ctx)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    )*};
}

with_context_io!(TcpStream, UnixStream);
