//! [`UnixListener`] and [`UnixStream`].

use super::super::socket::{Socket, RETRY_MAX, RETRY_MIN};
use super::peek_fd;
use crate::sched::interrupt::Until;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

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
    sock: Socket<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    socket_methods! {
        listener UnixListener(std::os::unix::net::UnixListener) -> UnixStream, SocketAddr;
        /// Creates a socket file at `path` and listens on it (the file must not exist).
        fn bind<P: AsRef<Path>>(path: P) -> UnixListener = std::os::unix::net::UnixListener;
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
        fn bind_addr(addr: &SocketAddr) -> UnixListener = std::os::unix::net::UnixListener;
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
        incoming;
    }
}

incoming!(UnixListener -> UnixStream);

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
    sock: Socket<std::os::unix::net::UnixStream>,
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
        let sock = Socket::new_stream(socket2::Domain::UNIX)?;
        let view = socket2::SockRef::from(&sock.inner);
        let mut pause = RETRY_MIN;
        loop {
            match view.connect(addr) {
                Ok(()) => return Ok(UnixStream { sock }),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EISCONN) => return Ok(UnixStream { sock }),
                    Some(libc::EAGAIN) => {
                        crate::sleep(pause);
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                    Some(libc::EINPROGRESS | libc::EALREADY) => break,
                    _ => return Err(e),
                },
            }
        }
        // In progress (not what Linux does for Unix sockets, but allowed).
        sock.finish_connect(Until::NEVER)?;
        Ok(UnixStream { sock })
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    socket_methods! {
        stream UnixStream(std::os::unix::net::UnixStream), SocketAddr;
        /// Shuts down the read, write, or both halves.
        ///
        /// ```
        /// use std::io::Read;
        /// use std::net::Shutdown;
        /// let (a, mut b) = corun::net::UnixStream::pair().unwrap();
        /// a.shutdown(Shutdown::Write).unwrap();
        /// assert_eq!(b.read(&mut [0u8; 8]).unwrap(), 0); // end of stream
        /// ```
        shutdown;
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
        set_read_timeout;
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
        self.sock.read_op(|s| peek_fd(s.as_raw_fd(), buf))
    }
}

impl UnixStream {
    /// Reads unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn read_until(&self, buf: &mut [u8], until: Until<'_>) -> io::Result<usize> {
        self.sock.read_until(buf, until)
    }

    /// Writes unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn write_until(&self, buf: &[u8], until: Until<'_>) -> io::Result<usize> {
        self.sock.write_until(buf, until)
    }
}

impl UnixListener {
    /// Accepts unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn accept_until(&self, until: Until<'_>) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.sock.accept(until, |l| l.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }
}

read_write!(UnixStream);

fd_traits!(UnixListener, "an open listening Unix stream socket");
fd_traits!(UnixStream, "an open connected Unix stream socket");
