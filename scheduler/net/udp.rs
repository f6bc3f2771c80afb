//! UDP: [`UdpSocket`].

use super::addr;
use super::socket::Socket;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

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
    sock: Socket<std::net::UdpSocket>,
}

impl UdpSocket {
    socket_methods! {
        datagram UdpSocket, SocketAddr;
        /// Binds to the first address of `addr` that works.
        ///
        /// ```
        /// let s = corun::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(s.local_addr().unwrap().ip().is_loopback());
        /// ```
        bind UdpSocket(std::net::UdpSocket);
        /// Wraps a `std` socket (made non-blocking here).
        ///
        /// ```
        /// let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// let s = corun::net::UdpSocket::from_std(std_sock).unwrap();
        /// assert!(s.local_addr().is_ok());
        /// ```
        from_std UdpSocket(std::net::UdpSocket);
        /// The connected peer's address (`NotConnected` if `connect` was not called).
        peer_addr -> SocketAddr;
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
        set_read_timeout;
        /// Sets how long a send may wait for buffer space (`None`: forever).
        set_write_timeout;
        /// With `true`, sends and receives return `WouldBlock` instead of waiting.
        ///
        /// ```
        /// let s = corun::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// s.set_nonblocking(true).unwrap();
        /// let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
        /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        /// ```
        set_nonblocking;
        option "SO_BROADCAST": set_broadcast(broadcast: bool), broadcast;
        option "IP_MULTICAST_LOOP": set_multicast_loop_v4(on: bool), multicast_loop_v4;
        option "IP_MULTICAST_TTL": set_multicast_ttl_v4(ttl: u32), multicast_ttl_v4;
        option "IPV6_MULTICAST_LOOP": set_multicast_loop_v6(on: bool), multicast_loop_v6;
        option "IP_TTL": set_ttl(ttl: u32), ttl;
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
        addr::each_addr(&addr, |a| self.sock.inner.connect(a))
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
        self.sock.write_op(|s| s.send(buf))
    }

    /// Receives one datagram from the connected peer (the rest of a datagram longer
    /// than `buf` is discarded); returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_op(|s| s.recv(buf))
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
        self.sock.read_op(|s| s.peek(buf))
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
        self.sock.write_op(|s| s.send_to(buf, to))
    }

    /// Receives the next datagram and its sender without removing it.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read_op(|s| s.peek_from(buf))
    }

    /// Joins an IPv4 multicast group on interface `interface`.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.inner.join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group on interface number `interface`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.inner.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.inner.leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.inner.leave_multicast_v6(multiaddr, interface)
    }
}

fd_traits!(UdpSocket, "an open UDP socket");
