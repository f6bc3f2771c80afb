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

/// `AsRawFd`, `AsFd` and `Debug` for a socket type whose `inner` field is the `std`
/// socket it wraps.
macro_rules! socket_fd_traits {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.inner)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.fmt(f)
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it, as `std`
/// has them: each call goes through the type's `io_op` with its own timeout.
/// `flush` does nothing (nothing is buffered).
macro_rules! stream_read_write {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let s: &$t = self;
                s.io_op(Dir::Read, &s.read_timeout, || (&s.inner).read(buf))
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let s: &$t = self;
                s.io_op(Dir::Read, &s.read_timeout, || {
                    (&s.inner).read_vectored(bufs)
                })
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let s: &$t = self;
                s.io_op(Dir::Write, &s.write_timeout, || (&s.inner).write(buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let s: &$t = self;
                s.io_op(Dir::Write, &s.write_timeout, || {
                    (&s.inner).write_vectored(bufs)
                })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

mod accept;
mod addr;
mod tcp;
mod udp;
pub mod unix;

pub use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
