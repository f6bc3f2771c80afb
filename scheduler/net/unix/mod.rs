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

mod datagram;
mod stream;

pub use datagram::UnixDatagram;
pub use stream::{Incoming, UnixListener, UnixStream};

use std::io;
use std::os::fd::RawFd;

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
