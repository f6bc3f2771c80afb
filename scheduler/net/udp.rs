//! UDP: [`UdpSocket`].

use super::addr;
use super::tcp::Timeout;
use crate::netpoll::readiness::Dir;
use crate::netpoll::source::IoSource;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A UDP socket; `std::net::UdpSocket`'s API. Inside a coroutine a receive (or a
/// send into a full buffer) parks the coroutine until the socket is ready; on a
/// plain thread it blocks the thread.
///
/// ```
/// use corun::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let a_addr = a.local_addr().unwrap();
/// let echo = corun::go!(move || {
///     let mut buf = [0u8; 64];
///     let (n, from) = a.recv_from(&mut buf).unwrap(); // parks until a datagram comes
///     a.send_to(&buf[..n], from).unwrap();
/// });
/// b.send_to(b"ping", a_addr).unwrap();
/// let mut buf = [0u8; 64];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a_addr));
/// echo.join().unwrap();
/// ```
pub struct UdpSocket {
    io: IoSource,
    inner: std::net::UdpSocket,
    read_timeout: Timeout,
    write_timeout: Timeout,
    nonblocking: AtomicBool,
}

impl UdpSocket {
    /// Binds to the first address of `addr` that works.
    ///
    /// ```
    /// let s = corun::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn bind<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<UdpSocket> {
        let s = addr::each_addr(&addr, |a| std::net::UdpSocket::bind(a))?;
        UdpSocket::from_std(s)
    }

    /// Wraps a `std` socket (made non-blocking here).
    ///
    /// ```
    /// let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = corun::net::UdpSocket::from_std(std_sock).unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn from_std(inner: std::net::UdpSocket) -> io::Result<UdpSocket> {
        inner.set_nonblocking(true)?;
        Ok(UdpSocket::from_owned(OwnedFd::from(inner)))
    }

    fn from_owned(fd: OwnedFd) -> UdpSocket {
        let inner = std::net::UdpSocket::from(fd);
        UdpSocket {
            io: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
            nonblocking: AtomicBool::new(false),
        }
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

    /// Sets the default destination of `send` and the only source `recv` accepts,
    /// trying each address `addr` resolves to until one works.
    ///
    /// ```
    /// use corun::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs + Sync>(&self, addr: A) -> io::Result<()> {
        addr::each_addr(&addr, |a| self.inner.connect(a))
    }

    /// Sends `buf` to the connected peer; returns the bytes sent.
    ///
    /// ```
    /// use corun::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.send(b"hi").unwrap(), 2);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io_op(Dir::Write, &self.write_timeout, || self.inner.send(buf))
    }

    /// Receives one datagram from the connected peer (the rest of a datagram longer
    /// than `buf` is discarded); returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io_op(Dir::Read, &self.read_timeout, || self.inner.recv(buf))
    }

    /// Receives the next datagram of the connected peer without removing it.
    ///
    /// ```
    /// use corun::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send_to(b"peek", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.peek(&mut buf).unwrap(), 4);
    /// assert_eq!(b.recv(&mut buf).unwrap(), 4); // still there
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io_op(Dir::Read, &self.read_timeout, || self.inner.peek(buf))
    }

    /// Sends `buf` to `addr` (its first resolved address, as `std` does).
    ///
    /// ```
    /// use corun::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 1];
    /// assert_eq!(b.recv_from(&mut buf).unwrap(), (1, a.local_addr().unwrap()));
    /// ```
    pub fn send_to<A: ToSocketAddrs + Sync>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = match addr::resolve(&addr)?.first() {
            Some(a) => *a,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no addresses to send data to",
                ))
            }
        };
        self.io_op(Dir::Write, &self.write_timeout, || {
            self.inner.send_to(buf, to)
        })
    }

    /// Receives one datagram; returns its length and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io_op(Dir::Read, &self.read_timeout, || self.inner.recv_from(buf))
    }

    /// Receives the next datagram and its sender without removing it.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io_op(Dir::Read, &self.read_timeout, || self.inner.peek_from(buf))
    }

    /// Another handle to the same socket (its timeouts start unset).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let s = UdpSocket::from_std(self.inner.try_clone()?)?;
        s.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(s)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address (`NotConnected` if `connect` was not called).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Sets how long a receive may wait (`None`: forever); an expired receive gives
    /// `WouldBlock`, as `std` does on Linux. A zero duration is an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = corun::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = s.recv(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    /// Sets how long a send may wait for buffer space (`None`: forever).
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

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.set_broadcast(broadcast)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v6()
    }

    /// Joins an IPv4 multicast group on interface `interface`.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group on interface number `interface`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.leave_multicast_v6(multiaddr, interface)
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

    /// With `true`, sends and receives return `WouldBlock` instead of waiting.
    ///
    /// ```
    /// let s = corun::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

socket_fd_traits!(UdpSocket);

impl FromRawFd for UdpSocket {
    /// # Safety
    /// `fd` must be an open UDP socket that nothing else owns.
    unsafe fn from_raw_fd(fd: RawFd) -> UdpSocket {
        // SAFETY: the caller passes ownership of an open socket descriptor.
        let s = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
        // A socket takes O_NONBLOCK without error; keep the API infallible as std's.
        let _ = s.set_nonblocking(true);
        UdpSocket::from_owned(OwnedFd::from(s))
    }
}

impl IntoRawFd for UdpSocket {
    fn into_raw_fd(self) -> RawFd {
        let UdpSocket { io, inner, .. } = self;
        drop(io); // deregister before the descriptor leaves our hands
        inner.into_raw_fd()
    }
}
