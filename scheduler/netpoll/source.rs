//! [`IoSource`]: how a non-blocking descriptor waits, for the socket types.
//!
//! Every operation is tried first. Only one that would block waits: a coroutine
//! registers the descriptor with its runtime's netpoller (once) and parks until the
//! edge for that direction (see [`readiness`](super::readiness)); a plain thread
//! waits in `poll(2)` on the descriptor alone, so the socket types work with no
//! runtime at all. Deadlines (IO timeouts) use the coroutine's timers.

use super::readiness::Dir;
use super::Ready;
use crate::runtime::context;
use crate::runtime::park::{self, Waiter};
use crate::runtime::shared::Shared;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

struct Registered {
    ready: Arc<Ready>,
    shared: Arc<Shared>,
}

/// A non-blocking descriptor and its registration with a netpoller. Drop it before
/// the descriptor is closed (declare it before the owning socket in a struct).
pub(crate) struct IoSource {
    fd: RawFd,
    reg: OnceLock<Registered>,
}

/// Registrations are rare (once per descriptor); one lock keeps two coroutines from
/// registering the same descriptor twice.
static REGISTERING: parking_lot::Mutex<()> = parking_lot::const_mutex(());

impl IoSource {
    /// Wraps `fd`, which the caller has made non-blocking.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            reg: OnceLock::new(),
        }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for readiness in
    /// `dir` between attempts. Past `deadline` it gives `WouldBlock` back as `std`
    /// does when a socket timeout expires (`TimedOut` for `connect`, by the caller).
    pub(crate) fn io<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let reg = self.reg.get();
            let seen = reg.map_or(0, |r| r.ready.seq(dir));
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the socket's timeout expired before it was ready",
                ));
            }
            let Some(shared) = context::with_worker(|w| w.shared.clone()) else {
                self.wait_thread(dir, deadline)?;
                continue;
            };
            let reg = match reg {
                Some(r) => r,
                None => {
                    // Registered now: its first edge (if already ready) bumps `seq`
                    // from 0; simplest is to try once more before waiting.
                    self.register(shared)?;
                    continue;
                }
            };
            let me = Waiter::current();
            if !reg.ready.wait(dir, seen, me.clone()) {
                continue;
            }
            let _forget = Forget {
                ready: &reg.ready,
                dir,
                me,
            };
            match deadline {
                Some(d) => park::park_until(d),
                None => park::park(),
            }
        }
    }

    fn register(&self, shared: Arc<Shared>) -> io::Result<()> {
        let _l = REGISTERING.lock();
        if self.reg.get().is_some() {
            return Ok(());
        }
        let ready = shared.netpoll.register(self.fd).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("corun could not register a socket with its netpoller: {e}"),
            )
        })?;
        // Set under the lock after a `get` found it empty: cannot fail.
        let _ = self.reg.set(Registered { ready, shared });
        Ok(())
    }

    /// A plain thread's wait: `poll(2)` on this descriptor alone.
    fn wait_thread(&self, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
        let events = match dir {
            Dir::Read => libc::POLLIN,
            Dir::Write => libc::POLLOUT,
        };
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_millis().min(i32::MAX as u128 - 1) as i32 + 1
            }
        };
        // SAFETY: `pfd` is a valid, initialised pollfd and we pass a count of 1.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        if let Some(r) = self.reg.take() {
            r.shared.netpoll.deregister(self.fd, r.ready);
        }
    }
}

/// Takes a waiter back out of the queue when its wait ends by a timeout, a
/// cancellation (unwinding through here) or a spurious wake-up.
struct Forget<'a> {
    ready: &'a Ready,
    dir: Dir,
    me: Waiter,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.ready.forget(self.dir, |w| w.same(&self.me));
    }
}
