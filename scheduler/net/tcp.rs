//! TCP: [`TcpListener`] and [`TcpStream`].

use super::addr;
use super::socket::Socket;
use crate::sched::interrupt::Until;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

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
    sock: Socket<std::net::TcpListener>,
}

impl TcpListener {
    socket_methods! {
        listener TcpListener(std::net::TcpListener) -> TcpStream, SocketAddr;
        /// An endless iterator of accepted connections (`accept` in a loop).
        incoming;
        option "IP_TTL": set_ttl(ttl: u32), ttl;
    }

    /// Binds to the first address of `addr` that works, with the largest listen
    /// backlog the system allows (`/proc/sys/net/core/somaxconn`, as Go does; std
    /// uses 128, which turns a burst of connections into seconds of retries).
    pub fn bind<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addr, max_backlog())
    }

    /// Like [`bind`](Self::bind), with room for `backlog` connections that are
    /// established but not yet accepted; the kernel caps it at `somaxconn`.
    ///
    /// ```
    /// let l = corun::net::TcpListener::bind_with_backlog("127.0.0.1:0", 16).unwrap();
    /// assert!(l.local_addr().unwrap().port() != 0);
    /// ```
    pub fn bind_with_backlog<A: ToSocketAddrs + Sync>(
        addr: A,
        backlog: u32,
    ) -> io::Result<TcpListener> {
        let l = addr::each_addr(&addr, |a| {
            let l = std::net::TcpListener::bind(a)?;
            // Listening again only changes the backlog (std listened with 128).
            socket2::SockRef::from(&l).listen(backlog.min(i32::MAX as u32) as i32)?;
            Ok(l)
        })?;
        TcpListener::from_std(l)
    }
}

/// The system's largest listen backlog, read once; 4096 if it cannot be read.
fn max_backlog() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096)
    })
}

impl TcpListener {
    /// Accepts unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn accept_until(&self, until: Until<'_>) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.sock.accept(until, |l| l.accept())?;
        Ok((TcpStream::from_std(s)?, a))
    }
}

incoming!(TcpListener -> TcpStream);

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
    sock: Socket<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn.
    pub fn connect<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpStream> {
        addr::each_addr(&addr, |a| TcpStream::connect_addr(a, Until::NEVER))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect with a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(addr, Until::at(Some(Instant::now() + timeout)))
    }

    /// Connects to `addr` (each address in turn) unless `until` passes first, then
    /// `TimedOut` (the context forms).
    pub(crate) fn connect_until<A: ToSocketAddrs + Sync>(
        addr: A,
        until: Until<'_>,
    ) -> io::Result<TcpStream> {
        addr::each_addr(&addr, |a| TcpStream::connect_addr(a, until))
    }

    /// Reads unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn read_until(&self, buf: &mut [u8], until: Until<'_>) -> io::Result<usize> {
        self.sock.read_until(buf, until)
    }

    /// Writes unless `until` passes first, then `WouldBlock` (the context forms).
    pub(crate) fn write_until(&self, buf: &[u8], until: Until<'_>) -> io::Result<usize> {
        self.sock.write_until(buf, until)
    }

    fn connect_addr(addr: &SocketAddr, until: Until<'_>) -> io::Result<TcpStream> {
        let sock = Socket::new_stream(socket2::Domain::for_address(*addr))?;
        match socket2::SockRef::from(&sock.inner).connect(&(*addr).into()) {
            Ok(()) => return Ok(TcpStream { sock }),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        match sock.finish_connect(until) {
            Ok(()) => Ok(TcpStream { sock }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} timed out"),
            )),
            Err(e) => Err(e),
        }
    }

    socket_methods! {
        stream TcpStream(std::net::TcpStream), SocketAddr;
        /// Shuts down the read, write, or both halves.
        shutdown;
        /// Sets how long a read may wait (`None`: forever); an expired read gives
        /// `WouldBlock`. A zero duration is an error, as in `std`.
        set_read_timeout;
        option "TCP_NODELAY": set_nodelay(nodelay: bool), nodelay;
        option "IP_TTL": set_ttl(ttl: u32), ttl;
    }

    /// Reads without taking the data out of the receive queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_op(|s| s.peek(buf))
    }
}

read_write!(TcpStream);

fd_traits!(TcpListener);
fd_traits!(TcpStream, "an open, connected TCP socket");
