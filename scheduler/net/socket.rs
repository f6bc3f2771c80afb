//! The core every socket type wraps: a non-blocking `std` socket registered with
//! the netpoller, with the `nonblocking` flag and timeouts applied here rather
//! than by the kernel. An operation is tried first and, on `WouldBlock`, retried
//! as readiness comes, until the timeout.
//!
//! The only file of `net` that names the netpoller and the runtime.

use crate::netpoll::readiness::Dir;
use crate::netpoll::source::IoSource;
use crate::sched::interrupt::Until;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a listener that ran out of file descriptors waits before it tries
/// `accept` again: no new edge comes for connections already queued.
const EMFILE_RETRY: Duration = Duration::from_millis(20);

/// The first and the longest pause between retries of an operation the kernel
/// sends no readiness edge for: a `connect` to a listener whose backlog is full
/// (`EAGAIN`), a datagram to a socket whose receive queue is full.
pub(super) const RETRY_MIN: Duration = Duration::from_micros(250);
pub(super) const RETRY_MAX: Duration = Duration::from_millis(20);

/// What the core needs of a `std` socket type beyond its descriptor.
pub(super) trait StdSocket: AsFd + FromRawFd + IntoRawFd + Sized {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
    fn try_clone(&self) -> io::Result<Self>;
}

macro_rules! std_socket {
    ($($t:ty),*) => {$(
        impl StdSocket for $t {
            fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                <$t>::set_nonblocking(self, nonblocking)
            }

            fn try_clone(&self) -> io::Result<Self> {
                <$t>::try_clone(self)
            }
        }
    )*};
}
std_socket!(
    std::net::TcpListener,
    std::net::TcpStream,
    std::net::UdpSocket,
    UnixListener,
    UnixStream,
    UnixDatagram
);

/// A timeout held as nanoseconds, 0 for none.
#[derive(Default)]
struct Timeout(AtomicU64);

impl Timeout {
    fn set(&self, d: Option<Duration>) -> io::Result<()> {
        let ns = match d {
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout (use None for no timeout)",
                ))
            }
            Some(d) => d.as_nanos().clamp(1, u64::MAX as u128) as u64,
            None => 0,
        };
        self.0.store(ns, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The deadline of an operation starting now.
    fn deadline(&self) -> Option<Instant> {
        self.get().map(|d| Instant::now() + d)
    }
}

/// A `std` socket, made non-blocking, and how its operations wait.
pub(super) struct Socket<S> {
    /// Declared before `inner` so that it deregisters before the descriptor closes.
    io: IoSource,
    pub(super) inner: S,
    /// Set by the user: operations give `WouldBlock` instead of waiting.
    nonblocking: AtomicBool,
    read_timeout: Timeout,
    write_timeout: Timeout,
    /// Listeners only: set after `accept` failed for lack of file descriptors.
    starved: AtomicBool,
}

impl<S: StdSocket> Socket<S> {
    /// Wraps `inner`, already non-blocking.
    fn new(inner: S) -> Socket<S> {
        Socket {
            io: IoSource::new(inner.as_fd().as_raw_fd()),
            inner,
            nonblocking: AtomicBool::new(false),
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
            starved: AtomicBool::new(false),
        }
    }

    /// Wraps `inner`, making it non-blocking.
    pub(super) fn from_std(inner: S) -> io::Result<Socket<S>> {
        inner.set_nonblocking(true)?;
        Ok(Socket::new(inner))
    }

    /// # Safety
    /// `fd` must be an open socket of type `S` that nothing else owns.
    pub(super) unsafe fn from_raw_fd(fd: RawFd) -> Socket<S> {
        // SAFETY: the caller passes ownership of an open socket descriptor.
        let s = unsafe { S::from_raw_fd(fd) };
        // A socket takes O_NONBLOCK without error; keep the API infallible as std's.
        let _ = s.set_nonblocking(true);
        Socket::new(s)
    }

    pub(super) fn into_raw_fd(self) -> RawFd {
        let Socket { io, inner, .. } = self;
        drop(io); // deregister before the descriptor leaves our hands
        inner.into_raw_fd()
    }

    /// Another handle to the same socket, with this one's `nonblocking` flag and
    /// no timeouts.
    pub(super) fn try_clone(&self) -> io::Result<Socket<S>> {
        let s = Socket::from_std(self.inner.try_clone()?)?;
        s.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(s)
    }

    pub(super) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    pub(super) fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(dur)
    }

    pub(super) fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    pub(super) fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Runs `op` on the socket until it does not give `WouldBlock`, waiting for
    /// readiness in `dir` until the `timeout` expires or `until` passes (not at all
    /// if nonblocking).
    fn wait_op<R>(
        &self,
        dir: Dir,
        timeout: &Timeout,
        until: Until<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return op(&self.inner);
        }
        self.io
            .io(dir, until.or_at(timeout.deadline()), || op(&self.inner))
    }

    /// A receive (or read, or peek), under the read timeout.
    pub(super) fn read_op<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.wait_op(Dir::Read, &self.read_timeout, Until::NEVER, op)
    }

    /// A send (or write), under the write timeout.
    pub(super) fn write_op<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.wait_op(Dir::Write, &self.write_timeout, Until::NEVER, op)
    }

    /// A read, under the read timeout and `until` (the context forms).
    pub(super) fn read_until(&self, buf: &mut [u8], until: Until<'_>) -> io::Result<usize>
    where
        for<'a> &'a S: Read,
    {
        self.wait_op(Dir::Read, &self.read_timeout, until, |mut s| s.read(buf))
    }

    /// A write, under the write timeout and `until` (the context forms).
    pub(super) fn write_until(&self, buf: &[u8], until: Until<'_>) -> io::Result<usize>
    where
        for<'a> &'a S: Write,
    {
        self.wait_op(Dir::Write, &self.write_timeout, until, |mut s| s.write(buf))
    }

    /// A send the kernel gives no readiness edge for when it fails with
    /// `WouldBlock` (a Unix datagram to a full queue), under the write timeout.
    pub(super) fn write_op_retrying(
        &self,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return op(&self.inner);
        }
        let deadline = self.write_timeout.deadline();
        retry_until(&self.io, Dir::Write, deadline, || op(&self.inner))
    }

    /// Runs `accept` (the `std` listener's), waiting for readiness unless
    /// nonblocking. `EMFILE`/`ENFILE` is returned to the caller and sets `starved`;
    /// while it is set, waits also end every 20 ms to try again, until an attempt
    /// finds the queue empty (a new connection brings an edge again) or succeeds.
    /// `until` ends the wait with `WouldBlock` (the context forms).
    pub(super) fn accept<T>(
        &self,
        until: Until<'_>,
        mut accept: impl FnMut(&S) -> io::Result<T>,
    ) -> io::Result<T> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        loop {
            let was_starved = self.starved.load(Ordering::Relaxed);
            let deadline = was_starved.then(|| Instant::now() + EMFILE_RETRY);
            let r = if nonblocking {
                accept(&self.inner)
            } else {
                self.io
                    .io(Dir::Read, until.or_at(deadline), || accept(&self.inner))
            };
            match r {
                Ok(v) => {
                    if was_starved {
                        self.starved.store(false, Ordering::Relaxed);
                    }
                    crate::sched::placement::note_accept();
                    return Ok(v);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.starved.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Err(e) if was_starved && !nonblocking && e.kind() == io::ErrorKind::WouldBlock => {
                    // The retry timer fired and the queue was empty at the last
                    // attempt: a new connection will bring an edge again, so stop
                    // polling every 20 ms.
                    self.starved.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: StdSocket + From<OwnedFd>> Socket<S> {
    /// A new non-blocking stream socket of `domain`, to connect.
    pub(super) fn new_stream(domain: socket2::Domain) -> io::Result<Socket<S>> {
        use socket2::{Socket as Sock, Type};
        let sock = Sock::new(domain, Type::STREAM.cloexec(), None)?;
        sock.set_nonblocking(true)?;
        Ok(Socket::new(S::from(OwnedFd::from(sock))))
    }

    /// Waits for a `connect` in progress until `until` passes (then `WouldBlock`):
    /// the socket is writable when it is done, and `SO_ERROR` says how it went.
    pub(super) fn finish_connect(&self, until: Until<'_>) -> io::Result<()> {
        let view = socket2::SockRef::from(&self.inner);
        self.io.io(Dir::Write, until, || match view.take_error()? {
            Some(e) => Err(e),
            None => match view.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        })
    }
}

/// A stream's `Read`, as `std` has it for `&TcpStream`, under the read timeout.
impl<S: StdSocket> Read for &Socket<S>
where
    for<'a> &'a S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_op(|mut s| s.read_vectored(bufs))
    }
}

/// A stream's `Write`, under the write timeout. `flush` does nothing (nothing is
/// buffered).
impl<S: StdSocket> Write for &Socket<S>
where
    for<'a> &'a S: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_op(|mut s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_op(|mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn in_coroutine() -> bool {
    crate::sched::context::current_task_ptr().is_some()
}

/// Runs `op`, which the kernel gives no readiness edge for when it fails with
/// `WouldBlock` (or gives one only sometimes), retrying on a growing timer until
/// `deadline`; an edge wakes a coroutine earlier. `WouldBlock` past the deadline.
fn retry_until(
    io: &IoSource,
    dir: Dir,
    deadline: Option<Instant>,
    mut op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    let mut pause = RETRY_MIN;
    loop {
        let retry = Instant::now() + pause;
        let next = deadline.map_or(retry, |d| d.min(retry));
        let r = if in_coroutine() {
            io.io(dir, Until::at(Some(next)), &mut op)
        } else {
            // poll(2) would report such a socket ready at once: sleep instead.
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep_until(next);
                    Err(e)
                }
                r => r,
            }
        };
        match r {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && deadline.map_or(true, |d| Instant::now() < d) =>
            {
                pause = (pause * 2).min(RETRY_MAX);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the socket's timeout expired before it was ready",
                ))
            }
            r => return r,
        }
    }
}
