//! TCP: [`TcpListener`] and [`TcpStream`].

use super::addr;
use crate::netpoll::readiness::Dir;
use crate::netpoll::source::IoSource;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A timeout held as nanoseconds, 0 for none.
#[derive(Default)]
pub(crate) struct Timeout(AtomicU64);

impl Timeout {
    pub(crate) fn set(&self, d: Option<Duration>) -> io::Result<()> {
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

    pub(crate) fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The deadline of an operation starting now.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.get().map(|d| Instant::now() + d)
    }
}

/// A TCP socket server, listening for connections; `std::net::TcpListener`'s API.
///
/// ```
/// use corun::net::{TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// let c = corun::go!(move || TcpStream::connect(addr).unwrap().local_addr().unwrap());
/// let (_s, peer) = l.accept().unwrap(); // a plain thread blocks; a coroutine parks
/// assert_eq!(peer, c.join().unwrap());
/// ```
pub struct TcpListener {
    io: IoSource,
    inner: std::net::TcpListener,
    nonblocking: AtomicBool,
    /// Set after `accept` failed for lack of file descriptors.
    starved: AtomicBool,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works.
    pub fn bind<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpListener> {
        let l = addr::each_addr(&addr, |a| std::net::TcpListener::bind(a))?;
        TcpListener::from_std(l)
    }

    /// Wraps a `std` listener (made non-blocking here).
    pub fn from_std(inner: std::net::TcpListener) -> io::Result<TcpListener> {
        inner.set_nonblocking(true)?;
        Ok(TcpListener {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            nonblocking: AtomicBool::new(false),
            starved: AtomicBool::new(false),
        })
    }

    /// Accepts a connection, parking the calling coroutine until one arrives.
    ///
    /// When the process is out of file descriptors it returns that error (`EMFILE`
    /// or `ENFILE`); the next calls then retry every 20 ms, since the kernel sends no
    /// new readiness for connections already waiting.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        let (s, a) =
            super::accept::accept(&self.io, &self.starved, nonblocking, || self.inner.accept())?;
        Ok((TcpStream::from_std(s)?, a))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let l = TcpListener::from_std(self.inner.try_clone()?)?;
        l.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(l)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// With `true`, `accept` returns `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

/// The iterator of [`TcpListener::incoming`]; it never returns `None`.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection; `std::net::TcpStream`'s API, with `Read` and `Write`.
///
/// ```
/// use corun::net::{TcpListener, TcpStream};
/// use std::io::{BufRead, BufReader, Write};
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// corun::go!(move || {
///     let (mut s, _) = l.accept().unwrap();
///     s.write_all(b"line one\nline two\n").unwrap();
/// });
/// let s = TcpStream::connect(addr).unwrap();
/// let lines: Vec<String> = BufReader::new(s).lines().map(|l| l.unwrap()).collect();
/// assert_eq!(lines, ["line one", "line two"]);
/// ```
pub struct TcpStream {
    io: IoSource,
    inner: std::net::TcpStream,
    read_timeout: Timeout,
    write_timeout: Timeout,
    nonblocking: AtomicBool,
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn.
    pub fn connect<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpStream> {
        addr::each_addr(&addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect with a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(addr, Some(Instant::now() + timeout))
    }

    fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::for_address(*addr), Type::STREAM.cloexec(), None)?;
        sock.set_nonblocking(true)?;
        let s = TcpStream::from_owned(OwnedFd::from(sock));
        // A borrowed view of our own descriptor, for socket2's `connect`.
        let view = socket2::SockRef::from(&s.inner);
        match view.connect(&(*addr).into()) {
            Ok(()) => return Ok(s),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Connecting: writable when done; `SO_ERROR` says how it went.
        let r = s.io.io(Dir::Write, deadline, || match view.take_error()? {
            Some(e) => Err(e),
            None => match s.inner.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        });
        match r {
            Ok(()) => Ok(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} timed out"),
            )),
            Err(e) => Err(e),
        }
    }

    fn from_owned(fd: OwnedFd) -> TcpStream {
        let inner = std::net::TcpStream::from(fd);
        TcpStream {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
            nonblocking: AtomicBool::new(false),
        }
    }

    /// Wraps a connected `std` stream (made non-blocking here).
    pub fn from_std(inner: std::net::TcpStream) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        Ok(TcpStream::from_owned(OwnedFd::from(inner)))
    }

    fn io_op<R>(
        &self,
        dir: Dir,
        timeout: &Timeout,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut op = op;
        if self.nonblocking.load(Ordering::Relaxed) {
            return op();
        }
        self.io.io(dir, timeout.deadline(), op)
    }

    /// Reads without taking the data out of the receive queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io_op(Dir::Read, &self.read_timeout, || self.inner.peek(buf))
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Another handle to the same connection (its timeouts start unset).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let s = TcpStream::from_std(self.inner.try_clone()?)?;
        s.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(s)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Sets how long a read may wait (`None`: forever); an expired read gives
    /// `WouldBlock`. A zero duration is an error, as in `std`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    /// Sets how long a write may wait (`None`: forever).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(dur)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// With `true`, reads and writes return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

stream_read_write!(TcpStream);

socket_fd_traits!(TcpListener);
socket_fd_traits!(TcpStream);

impl FromRawFd for TcpStream {
    /// # Safety
    /// `fd` must be an open, connected TCP socket that nothing else owns.
    unsafe fn from_raw_fd(fd: RawFd) -> TcpStream {
        // SAFETY: the caller passes ownership of an open socket descriptor.
        let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        // A socket takes O_NONBLOCK without error; keep the API infallible as std's.
        let _ = s.set_nonblocking(true);
        TcpStream::from_owned(OwnedFd::from(s))
    }
}

impl IntoRawFd for TcpStream {
    fn into_raw_fd(self) -> RawFd {
        let TcpStream { io, inner, .. } = self;
        drop(io); // deregister before the descriptor leaves our hands
        inner.into_raw_fd()
    }
}
