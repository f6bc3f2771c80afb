//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`], with
//! `std::os::unix::net`'s API. Inside a coroutine an operation that would block
//! parks the coroutine on the netpoller; on a plain thread it blocks the thread.
//!
//! ```
//! use corun::net::{UnixListener, UnixStream};
//! use std::io::{Read, Write};
//!
//! let dir = std::env::temp_dir().join(format!("corun-doc-unix-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("echo.sock");
//! let _ = std::fs::remove_file(&path);
//! let listener = UnixListener::bind(&path).unwrap();
//! let server = corun::go!(move || {
//!     let (mut s, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 4];
//!     s.read_exact(&mut buf).unwrap();
//!     s.write_all(&buf).unwrap();
//! });
//! let mut c = UnixStream::connect(&path).unwrap();
//! c.write_all(b"ping").unwrap();
//! let mut buf = [0u8; 4];
//! c.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"ping");
//! server.join().unwrap();
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! As with the TCP types, timeouts belong to the object they were set on (a
//! `try_clone` starts with none) and an expired one gives `WouldBlock`.

use super::tcp::Timeout;
use crate::netpoll::readiness::Dir;
use crate::netpoll::source::IoSource;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The first and the longest pause between retries of an operation the kernel
/// sends no readiness edge for: a `connect` to a listener whose backlog is full
/// (`EAGAIN`), a datagram to a socket whose receive queue is full.
const RETRY_MIN: Duration = Duration::from_micros(250);
const RETRY_MAX: Duration = Duration::from_millis(20);

fn in_coroutine() -> bool {
    crate::sched::context::current_task_ptr().is_some()
}

/// `socket2`'s form of a `std` Unix address.
fn sockaddr(addr: &SocketAddr) -> io::Result<socket2::SockAddr> {
    if let Some(p) = addr.as_pathname() {
        return socket2::SockAddr::unix(p);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = addr.as_abstract_name() {
            // socket2 reads a leading NUL as the abstract namespace.
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(name);
            return socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot connect to an unnamed Unix socket address: pass a path or an abstract name",
    ))
}

/// `recv(2)` with `MSG_PEEK` (std's `peek` for Unix sockets is not stable yet).
fn peek_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and
    // `fd` is a descriptor its owner keeps open while it borrows us.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
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
        let until = deadline.map_or(retry, |d| d.min(retry));
        let r = if in_coroutine() {
            io.io(dir, Some(until), &mut op)
        } else {
            // poll(2) would report such a socket ready at once: sleep instead.
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep_until(until);
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

// ---- UnixListener ----

/// A Unix stream socket server; `std::os::unix::net::UnixListener`'s API.
///
/// ```
/// use corun::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("corun-doc-ul-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let c = corun::go!(move || UnixStream::connect(&p).unwrap());
/// let (_s, _peer) = l.accept().unwrap(); // a plain thread blocks; a coroutine parks
/// c.join().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: IoSource,
    inner: std::os::unix::net::UnixListener,
    nonblocking: AtomicBool,
    /// Set after `accept` failed for lack of file descriptors.
    starved: AtomicBool,
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it (the file must not exist).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Listens on `addr` (a path, or on Linux an abstract name).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// let name = format!("corun-doc-abstract-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = corun::net::UnixListener::bind_addr(&addr).unwrap();
    /// let c = corun::net::UnixStream::connect_addr(&addr).unwrap();
    /// let (_s, _) = l.accept().unwrap();
    /// assert!(c.peer_addr().unwrap().as_abstract_name().is_some());
    /// # }
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind_addr(addr)?)
    }

    /// Wraps a `std` listener (made non-blocking here).
    pub fn from_std(inner: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        inner.set_nonblocking(true)?;
        Ok(UnixListener::from_owned(OwnedFd::from(inner)))
    }

    fn from_owned(fd: OwnedFd) -> UnixListener {
        let inner = std::os::unix::net::UnixListener::from(fd);
        UnixListener {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            nonblocking: AtomicBool::new(false),
            starved: AtomicBool::new(false),
        }
    }

    /// Accepts a connection, parking the calling coroutine until one arrives.
    ///
    /// When the process is out of file descriptors it returns that error (`EMFILE`
    /// or `ENFILE`); the next calls then retry every 20 ms, since the kernel sends no
    /// new readiness for connections already waiting.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        let (s, a) =
            super::accept::accept(&self.io, &self.starved, nonblocking, || self.inner.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    ///
    /// ```no_run
    /// use std::io::Write;
    /// let l = corun::net::UnixListener::bind("/tmp/hello.sock").unwrap();
    /// for s in l.incoming() {
    ///     let mut s = s.unwrap();
    ///     corun::go!(move || s.write_all(b"hello\n"));
    /// }
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let l = UnixListener::from_std(self.inner.try_clone()?)?;
        l.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(l)
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

/// The iterator of [`UnixListener::incoming`]; it never returns `None`.
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

// ---- UnixStream ----

/// A Unix stream connection; `std::os::unix::net::UnixStream`'s API, with `Read`
/// and `Write` (also for `&UnixStream`).
///
/// ```
/// use corun::net::UnixStream;
/// use std::io::{Read, Write};
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let h = corun::go!(move || {
///     let mut s = String::new();
///     (&a).read_to_string(&mut s).unwrap(); // parks until `b` is closed
///     s
/// });
/// b.write_all(b"over the pair").unwrap();
/// drop(b);
/// assert_eq!(h.join().unwrap(), "over the pair");
/// ```
pub struct UnixStream {
    io: IoSource,
    inner: std::os::unix::net::UnixStream,
    read_timeout: Timeout,
    write_timeout: Timeout,
    nonblocking: AtomicBool,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// A listener whose backlog is full makes a non-blocking connect fail with
    /// `EAGAIN` and sends no readiness for it later, so the connect is retried on a
    /// timer (0.25 ms growing to 20 ms) until the listener makes room.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_sockaddr(&socket2::SockAddr::unix(path)?)
    }

    /// Connects to `addr` (a path, or on Linux an abstract name).
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_sockaddr(&sockaddr(addr)?)
    }

    fn connect_sockaddr(addr: &socket2::SockAddr) -> io::Result<UnixStream> {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        sock.set_nonblocking(true)?;
        let s = UnixStream::from_owned(OwnedFd::from(sock));
        let view = socket2::SockRef::from(&s.inner);
        let mut pause = RETRY_MIN;
        loop {
            match view.connect(addr) {
                Ok(()) => return Ok(s),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EISCONN) => return Ok(s),
                    Some(libc::EAGAIN) => {
                        crate::sleep(pause);
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                    Some(libc::EINPROGRESS | libc::EALREADY) => break,
                    _ => return Err(e),
                },
            }
        }
        // In progress (not what Linux does for Unix sockets, but allowed): writable
        // when done, and `SO_ERROR` says how it went.
        s.io.io(Dir::Write, None, || match view.take_error()? {
            Some(e) => Err(e),
            None => match s.inner.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        })?;
        Ok(s)
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    fn from_owned(fd: OwnedFd) -> UnixStream {
        let inner = std::os::unix::net::UnixStream::from(fd);
        UnixStream {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
            nonblocking: AtomicBool::new(false),
        }
    }

    /// Wraps a connected `std` stream (made non-blocking here).
    pub fn from_std(inner: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        inner.set_nonblocking(true)?;
        Ok(UnixStream::from_owned(OwnedFd::from(inner)))
    }

    fn io_op<R>(
        &self,
        dir: Dir,
        timeout: &Timeout,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return op();
        }
        self.io.io(dir, timeout.deadline(), op)
    }

    /// Reads without taking the data out of the receive queue.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, mut b) = corun::net::UnixStream::pair().unwrap();
    /// a.write_all(b"abc").unwrap();
    /// let mut buf = [0u8; 3];
    /// assert_eq!(b.peek(&mut buf).unwrap(), 3);
    /// b.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"abc");
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        self.io_op(Dir::Read, &self.read_timeout, || peek_fd(fd, buf))
    }

    /// Shuts down the read, write, or both halves.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// let (a, mut b) = corun::net::UnixStream::pair().unwrap();
    /// a.shutdown(Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 8]).unwrap(), 0); // end of stream
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Another handle to the same connection (its timeouts start unset).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let s = UnixStream::from_std(self.inner.try_clone()?)?;
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
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let (mut a, _b) = corun::net::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = a.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
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

stream_read_write!(UnixStream);

// ---- UnixDatagram ----

/// A Unix datagram socket; `std::os::unix::net::UnixDatagram`'s API.
///
/// A send to a socket whose receive queue is full waits: woken by the kernel when
/// the socket is connected, else retried on a timer (0.25 ms growing to 20 ms),
/// since the kernel sends no readiness edge for room in another socket's queue.
///
/// ```
/// use corun::net::UnixDatagram;
/// let (a, b) = UnixDatagram::pair().unwrap();
/// let h = corun::go!(move || {
///     let mut buf = [0u8; 16];
///     let n = b.recv(&mut buf).unwrap(); // parks until a datagram comes
///     buf[..n].to_vec()
/// });
/// a.send(b"one datagram").unwrap();
/// assert_eq!(h.join().unwrap(), b"one datagram");
/// ```
pub struct UnixDatagram {
    io: IoSource,
    inner: std::os::unix::net::UnixDatagram,
    read_timeout: Timeout,
    write_timeout: Timeout,
    nonblocking: AtomicBool,
}

impl UnixDatagram {
    /// Creates a socket bound to a new socket file at `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// Creates a socket bound to `addr` (a path, or on Linux an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// Creates a socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a `std` socket (made non-blocking here).
    pub fn from_std(inner: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        inner.set_nonblocking(true)?;
        Ok(UnixDatagram::from_owned(OwnedFd::from(inner)))
    }

    fn from_owned(fd: OwnedFd) -> UnixDatagram {
        let inner = std::os::unix::net::UnixDatagram::from(fd);
        UnixDatagram {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
            nonblocking: AtomicBool::new(false),
        }
    }

    fn read_op<R>(&self, mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return op();
        }
        self.io.io(Dir::Read, self.read_timeout.deadline(), op)
    }

    fn send_op(&self, mut op: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return op();
        }
        retry_until(&self.io, Dir::Write, self.write_timeout.deadline(), op)
    }

    /// Sets the default destination of `send` and the only source `recv` accepts.
    ///
    /// ```
    /// use corun::net::UnixDatagram;
    /// let dir = std::env::temp_dir().join(format!("corun-doc-ud-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let server = UnixDatagram::bind(dir.join("server")).unwrap();
    /// let client = UnixDatagram::unbound().unwrap();
    /// client.connect(dir.join("server")).unwrap();
    /// client.send(b"hi").unwrap();
    /// let mut buf = [0u8; 8];
    /// let (n, from) = server.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from.is_unnamed()), (&b"hi"[..], true));
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.connect(path)
    }

    /// Connects to `addr` (a path, or on Linux an abstract name).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.connect_addr(addr)
    }

    /// Sends `buf` to the connected peer as one datagram.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_op(|| self.inner.send(buf))
    }

    /// Sends `buf` to the socket at `path` as one datagram.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_op(|| self.inner.send_to(buf, path))
    }

    /// Sends `buf` to `addr` as one datagram.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_op(|| self.inner.send_to_addr(buf, addr))
    }

    /// Receives one datagram from the connected peer; returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(|| self.inner.recv(buf))
    }

    /// Receives one datagram; returns its length and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_op(|| self.inner.recv_from(buf))
    }

    /// Receives the next datagram without removing it.
    ///
    /// ```
    /// let (a, b) = corun::net::UnixDatagram::pair().unwrap();
    /// a.send(b"twice").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.peek(&mut buf).unwrap(), 5);
    /// assert_eq!(b.recv(&mut buf).unwrap(), 5);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        self.read_op(|| peek_fd(fd, buf))
    }

    /// Another handle to the same socket (its timeouts start unset).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let s = UnixDatagram::from_std(self.inner.try_clone()?)?;
        s.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(s)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Sets how long a receive may wait (`None`: forever); an expired receive
    /// gives `WouldBlock`. A zero duration is an error.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    /// Sets how long a send may wait for room (`None`: forever).
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

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// With `true`, sends and receives return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

socket_fd_traits!(UnixListener);
socket_fd_traits!(UnixStream);
socket_fd_traits!(UnixDatagram);

macro_rules! raw_fd_traits {
    ($t:ident, $std:ty, $what:literal) => {
        impl FromRawFd for $t {
            #[doc = concat!("# Safety\n`fd` must be an open ", $what, " that nothing else owns.")]
            unsafe fn from_raw_fd(fd: RawFd) -> $t {
                // SAFETY: the caller passes ownership of an open socket descriptor.
                let s = unsafe { <$std>::from_raw_fd(fd) };
                // A socket takes O_NONBLOCK without error; keep the API infallible.
                let _ = s.set_nonblocking(true);
                $t::from_owned(OwnedFd::from(s))
            }
        }

        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                let $t { io, inner, .. } = self;
                drop(io); // deregister before the descriptor leaves our hands
                inner.into_raw_fd()
            }
        }
    };
}
raw_fd_traits!(
    UnixListener,
    std::os::unix::net::UnixListener,
    "listening Unix stream socket"
);
raw_fd_traits!(
    UnixStream,
    std::os::unix::net::UnixStream,
    "connected Unix stream socket"
);
raw_fd_traits!(
    UnixDatagram,
    std::os::unix::net::UnixDatagram,
    "Unix datagram socket"
);
