//! [`UnixDatagram`].

use super::super::socket::Socket;
use super::peek_fd;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

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
    sock: Socket<std::os::unix::net::UnixDatagram>,
}

impl UnixDatagram {
    socket_methods! {
        datagram UnixDatagram, SocketAddr;
        /// Creates a socket bound to a new socket file at `path`.
        fn bind<P: AsRef<Path>>(path: P) -> UnixDatagram = std::os::unix::net::UnixDatagram;
        /// Creates a socket bound to `addr` (a path, or on Linux an abstract name).
        fn bind_addr(addr: &SocketAddr) -> UnixDatagram = std::os::unix::net::UnixDatagram;
        /// Creates a socket bound to no address.
        fn unbound() -> UnixDatagram = std::os::unix::net::UnixDatagram;
        /// Wraps a `std` socket (made non-blocking here).
        from_std UnixDatagram(std::os::unix::net::UnixDatagram);
        /// The connected peer's address.
        peer_addr -> SocketAddr;
        /// Sets how long a receive may wait (`None`: forever); an expired receive
        /// gives `WouldBlock`. A zero duration is an error.
        set_read_timeout;
        /// Sets how long a send may wait for room (`None`: forever).
        set_write_timeout;
        /// Shuts down the read, write, or both halves.
        shutdown;
        /// With `true`, sends and receives return `WouldBlock` instead of waiting.
        set_nonblocking;
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
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
        self.sock.inner.connect(path)
    }

    /// Connects to `addr` (a path, or on Linux an abstract name).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.inner.connect_addr(addr)
    }

    /// Sends `buf` to the connected peer as one datagram.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_op_retrying(|s| s.send(buf))
    }

    /// Sends `buf` to the socket at `path` as one datagram.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.sock.write_op_retrying(|s| s.send_to(buf, path))
    }

    /// Sends `buf` to `addr` as one datagram.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.sock.write_op_retrying(|s| s.send_to_addr(buf, addr))
    }

    /// Receives one datagram from the connected peer; returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_op(|s| s.recv(buf))
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
        self.sock.read_op(|s| peek_fd(s.as_raw_fd(), buf))
    }
}

fd_traits!(UnixDatagram, "an open Unix datagram socket");
