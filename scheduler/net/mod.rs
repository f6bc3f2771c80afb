//! Sockets whose blocking calls park the calling coroutine, not its worker.
//!
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`] mirror `std::net`;
//! [`UnixListener`], [`UnixStream`] and [`UnixDatagram`] mirror
//! `std::os::unix::net`. The types have `std`'s names, methods and signatures and implement
//! [`std::io::Read`] and [`std::io::Write`] (also for `&TcpStream` and `&UnixStream`), so
//! [`BufReader`](std::io::BufReader), [`BufWriter`](std::io::BufWriter) and any crate
//! written against `Read`/`Write` work unchanged. Inside a coroutine, an operation
//! that would block parks the coroutine on the runtime's netpoller; on a plain thread
//! it blocks the thread, so the same types work everywhere.
//!
//! ```
//! use corun::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = corun::go!(move || {
//!     let (mut s, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     s.write_all(&buf).unwrap(); // echo
//! });
//! let client = corun::go!(move || {
//!     let mut s = TcpStream::connect(addr).unwrap();
//!     s.write_all(b"hello").unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     buf
//! });
//! assert_eq!(&client.join().unwrap(), b"hello");
//! server.join().unwrap();
//! ```
//!
//! Differences from `std::net`, all deliberate:
//! - Read and write timeouts belong to the object they were set on (a `try_clone`
//!   starts with none), since corun applies them itself rather than through
//!   `SO_RCVTIMEO`. An expired timeout gives `WouldBlock`, as `std` does on Linux.
//! - Address arguments must be `Sync` (every `std` address type is): a name that
//!   needs resolving is resolved on the [blocking pool](crate::blocking), off the
//!   workers, borrowing the argument meanwhile.

#[macro_use]
mod methods;
mod addr;
mod socket;
mod tcp;
mod udp;
pub mod unix;

pub use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
