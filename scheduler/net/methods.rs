//! The `pub fn`s and trait impls the socket types share, written once. Every type
//! is a struct whose one field `sock` is a [`Socket`](super::socket::Socket) of
//! the `std` type it wraps; the logic lives in `Socket`, these only forward.

/// `pub fn`s, invoked inside a type's `impl`. An item is a method's docs then its
/// keyword with what it needs to know (`/// docs` then `peer_addr -> SocketAddr;`),
/// so types whose docs differ still share the code; `fn name(args) -> T = Std;`
/// is a constructor of the `std` type, made non-blocking. `listener`, `stream`,
/// `datagram` and `timed` stand for what each kind has in common, docs included.
macro_rules! socket_methods {
    () => {};
    (listener $t:ident($std:ty) -> $stream:ident, $addr:ty; $($rest:tt)*) => {
        socket_methods! {
            /// Wraps a `std` listener (made non-blocking here).
            from_std $t($std);
            /// Accepts a connection, parking the calling coroutine until one arrives.
            ///
            /// When the process is out of file descriptors it returns that error (`EMFILE`
            /// or `ENFILE`); the next calls then retry every 20 ms, since the kernel sends no
            /// new readiness for connections already waiting.
            accept -> ($stream, $addr);
            /// The address this listener is bound to.
            local_addr -> $addr;
            /// Another handle to the same socket.
            try_clone $t;
            /// Takes the pending socket error (`SO_ERROR`).
            take_error;
            /// With `true`, `accept` returns `WouldBlock` instead of waiting.
            set_nonblocking;
            $($rest)*
        }
    };
    (stream $t:ident($std:ty), $addr:ty; $($rest:tt)*) => {
        socket_methods! {
            /// Wraps a connected `std` stream (made non-blocking here).
            from_std $t($std);
            /// Another handle to the same connection (its timeouts start unset).
            try_clone $t;
            /// The remote address.
            peer_addr -> $addr;
            /// Sets how long a write may wait (`None`: forever).
            set_write_timeout;
            /// With `true`, reads and writes return `WouldBlock` instead of waiting.
            set_nonblocking;
            timed $addr;
            $($rest)*
        }
    };
    (datagram $t:ident, $addr:ty; $($rest:tt)*) => {
        socket_methods! {
            /// Another handle to the same socket (its timeouts start unset).
            try_clone $t;
            /// Receives one datagram; returns its length and sender.
            recv_from -> $addr;
            timed $addr;
            $($rest)*
        }
    };
    // What streams and datagrams have in common.
    (timed $addr:ty; $($rest:tt)*) => {
        socket_methods! {
            /// The local address.
            local_addr -> $addr;
            /// The read timeout.
            read_timeout;
            /// The write timeout.
            write_timeout;
            /// Takes the pending socket error (`SO_ERROR`).
            take_error;
            $($rest)*
        }
    };
    ($(#[$doc:meta])*
        fn $name:ident $(<$g:ident: $b:path>)? ($($arg:ident: $ty:ty),*) -> $t:ident = $std:ty;
        $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name $(<$g: $b>)? ($($arg: $ty),*) -> std::io::Result<$t> {
            $t::from_std(<$std>::$name($($arg),*)?)
        }
        socket_methods!($($rest)*);
    };
    // `bind` of an IP socket: the first address `addr` resolves to that works.
    ($(#[$doc:meta])* bind $t:ident($std:ty); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn bind<A: std::net::ToSocketAddrs + Sync>(addr: A) -> std::io::Result<$t> {
            $t::from_std(super::addr::each_addr(&addr, |a| <$std>::bind(a))?)
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* from_std $t:ident($std:ty); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn from_std(inner: $std) -> std::io::Result<$t> {
            Ok($t { sock: Socket::from_std(inner)? })
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* try_clone $t:ident; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn try_clone(&self) -> std::io::Result<$t> {
            Ok($t { sock: self.sock.try_clone()? })
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* accept -> ($stream:ident, $addr:ty); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn accept(&self) -> std::io::Result<($stream, $addr)> {
            let (s, a) = self.sock.accept(crate::sched::interrupt::Until::NEVER, |l| l.accept())?;
            Ok(($stream::from_std(s)?, a))
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* incoming; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn incoming(&self) -> Incoming<'_> {
            Incoming { listener: self }
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* local_addr -> $addr:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn local_addr(&self) -> std::io::Result<$addr> {
            self.sock.inner.local_addr()
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* peer_addr -> $addr:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn peer_addr(&self) -> std::io::Result<$addr> {
            self.sock.inner.peer_addr()
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* recv_from -> $addr:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, $addr)> {
            self.sock.read_op(|s| s.recv_from(buf))
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* shutdown; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
            self.sock.inner.shutdown(how)
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* take_error; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
            self.sock.inner.take_error()
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* set_nonblocking; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
            self.sock.set_nonblocking(nonblocking)
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* set_read_timeout; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.sock.set_read_timeout(dur)
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* set_write_timeout; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.sock.set_write_timeout(dur)
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* read_timeout; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.sock.read_timeout()
        }
        socket_methods!($($rest)*);
    };
    ($(#[$doc:meta])* write_timeout; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.sock.write_timeout()
        }
        socket_methods!($($rest)*);
    };
    // A socket option: its setter and getter, documented by its name.
    (option $opt:literal: $set:ident($arg:ident: $ty:ty), $get:ident; $($rest:tt)*) => {
        #[doc = concat!("Sets `", $opt, "`.")]
        pub fn $set(&self, $arg: $ty) -> std::io::Result<()> {
            self.sock.inner.$set($arg)
        }

        #[doc = concat!("Reads `", $opt, "`.")]
        pub fn $get(&self) -> std::io::Result<$ty> {
            self.sock.inner.$get()
        }
        socket_methods!($($rest)*);
    };
}

/// The iterator of a listener type's `incoming`, to be defined in its module.
macro_rules! incoming {
    ($listener:ident -> $stream:ident) => {
        #[doc = concat!("The iterator of [`", stringify!($listener), "::incoming`]; it never returns `None`.")]
        pub struct Incoming<'a> {
            listener: &'a $listener,
        }

        impl Iterator for Incoming<'_> {
            type Item = std::io::Result<$stream>;
            fn next(&mut self) -> Option<std::io::Result<$stream>> {
                Some(self.listener.accept().map(|(s, _)| s))
            }
        }
    };
}

/// `AsRawFd`, `AsFd` and `Debug` (the `std` socket's); with a description of the
/// descriptor it takes, also `FromRawFd` and `IntoRawFd`.
macro_rules! fd_traits {
    ($t:ident) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.sock.inner)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.sock.inner)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.sock.inner.fmt(f)
            }
        }
    };
    ($t:ident, $what:literal) => {
        fd_traits!($t);

        impl std::os::fd::FromRawFd for $t {
            #[doc = concat!("# Safety\n`fd` must be ", $what, " that nothing else owns.")]
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller's contract is `Socket::from_raw_fd`'s.
                let sock = unsafe { Socket::from_raw_fd(fd) };
                $t { sock }
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.sock.into_raw_fd()
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it, as `std`
/// has them; `Socket`'s do the work.
macro_rules! read_write {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &self.sock, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &self.sock, bufs)
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &self.sock, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &self.sock, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                std::io::Write::flush(&mut &self.sock)
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                std::io::Write::flush(&mut &*self)
            }
        }
    };
    // What streams and datagrams have in common.
    (@[$t:ident, $std:ty, $addr:ty] timed; $($rest:tt)*) => {
        socket_methods! { @[$t, $std, $addr]
            /// The local address.
            local_addr;
            /// The read timeout.
            read_timeout;
            /// The write timeout.
            write_timeout;
            /// Takes the pending socket error (`SO_ERROR`).
            take_error;
            $($rest)*
        }
    };
}
