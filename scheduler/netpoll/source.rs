//! [`IoSource`]: how a non-blocking descriptor waits, for the socket types.
//!
//! Every operation is tried first. Only one that would block waits: a coroutine
//! registers the descriptor with its worker's poller (once) and parks until the
//! edge for that direction (see [`readiness`](super::readiness)); a plain thread
//! waits in `poll(2)` on the descriptor alone, so the socket types work with no
//! runtime at all. Deadlines (IO timeouts) use the coroutine's timers.
//!
//! A descriptor stays with the poller it was registered with, whichever coroutine
//! waits on it later, unless nobody polls that poller any more (its runtime has shut
//! down, or it was a dedicated thread's, which has ended): then the next coroutine
//! to wait moves it to its own worker's poller.

use super::readiness::{Dir, Readiness};
use super::Ready;
use crate::sched::context;
use crate::sched::interrupt::Until;
use crate::sched::park::{self, Waiter};
use crate::sched::shared::Shared;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Which worker's poller a descriptor is registered with.
struct Binding {
    shared: Arc<Shared>,
    worker: usize,
    /// The poller's generation then: a dedicated thread's poller that retired since
    /// is polled by nobody.
    generation: u64,
}

impl Binding {
    /// Whether its poller is still polled.
    fn live(&self) -> bool {
        !self.shared.shutdown.load(Ordering::Relaxed)
            && super::of(&self.shared, self.worker).generation() == self.generation
    }
}

/// A non-blocking descriptor and its registration with a poller. Drop it before
/// the descriptor is closed (declare it before the owning socket in a struct).
pub(crate) struct IoSource {
    fd: RawFd,
    /// Made at the first registration and kept for life (a move to another poller
    /// keeps it, so waiters queued on it are not lost).
    ready: OnceLock<Arc<Ready>>,
    bound: crate::loom::sync::Mutex<Option<Binding>>,
}

impl IoSource {
    /// Wraps `fd`, which the caller has made non-blocking.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            ready: OnceLock::new(),
            bound: crate::loom::sync::Mutex::new(None),
        }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for readiness in
    /// `dir` between attempts. Once `until` passes (its deadline, or its interrupt
    /// fired) it gives `WouldBlock` back as `std` does when a socket timeout expires
    /// (`TimedOut` for `connect`, by the caller; a context's error, by its forms).
    pub(crate) fn io<R>(
        &self,
        dir: Dir,
        until: Until<'_>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // An operation counts against the coroutine's budget, ready or not, so a
        // loop over a socket that is always ready still lets the others run.
        crate::sched::budget::consume();
        // Registered with the interrupt only once a wait is needed.
        let mut watch = None;
        // Bound by this call: wait on it even if it is not `live` (a runtime that
        // is shutting down), or the loop would rebind for ever without reaching
        // `park` and its cancellation point.
        let mut bound_here = false;
        loop {
            let ready = self.ready.get();
            let seen = ready.map_or(0, |r| r.seq(dir));
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if until.passed() {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the socket's timeout expired before it was ready",
                ));
            }
            if context::current_task_ptr().is_none() {
                self.wait_thread(dir, until)?;
                continue;
            }
            if watch.is_none() && until.interrupt.is_some() {
                // Registered before the next look at `until`: no fire is missed.
                watch = until.watch();
                continue;
            }
            let ready = match ready {
                Some(r) if bound_here || self.is_bound() => r,
                _ => {
                    // Registered now: an edge for data that is already there bumps
                    // `seq` past `seen`; simplest is to try once more before waiting.
                    self.bind()?;
                    bound_here = true;
                    continue;
                }
            };
            let me = Waiter::current();
            if !ready.wait(dir, seen, me.clone()) {
                continue;
            }
            let _forget = Forget { ready, dir, me };
            park::park(park::Reason::Io, until.deadline, park::Cancel::Point);
        }
    }

    /// Whether the descriptor is registered with a poller that is still polled.
    fn is_bound(&self) -> bool {
        matches!(&*self.bound.lock(), Some(b) if b.live())
    }

    /// Registers the descriptor with the calling worker's poller, moving it from a
    /// poller whose runtime has shut down.
    fn bind(&self) -> io::Result<()> {
        let Some((shared, worker)) = context::with_worker(|w| (w.shared.clone(), w.index)) else {
            return Ok(()); // not on a worker: the caller waits as a thread
        };
        let mut bound = self.bound.lock();
        let ready = self.ready.get_or_init(|| Arc::new(Readiness::new()));
        if let Some(old) = bound.as_ref() {
            if old.live() {
                return Ok(()); // another coroutine bound it meanwhile
            }
            super::of(&old.shared, old.worker).deregister(self.fd, ready.clone());
            *bound = None;
        }
        let poller = super::of(&shared, worker);
        let generation = poller.generation();
        poller.register(self.fd, ready).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("corun could not register a socket with its netpoller (epoll_ctl): {e}"),
            )
        })?;
        *bound = Some(Binding {
            shared,
            worker,
            generation,
        });
        Ok(())
    }

    /// A plain thread's wait: `poll(2)` on this descriptor alone. An interrupt cannot
    /// wake `poll`, so with one the thread looks at it every 10 ms.
    fn wait_thread(&self, dir: Dir, until: Until<'_>) -> io::Result<()> {
        let mut deadline = until.deadline;
        if until.interrupt.is_some() {
            let slice = Instant::now() + std::time::Duration::from_millis(10);
            deadline = Some(deadline.map_or(slice, |d| d.min(slice)));
        }
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
        if let (Some(b), Some(ready)) = (self.bound.lock().take(), self.ready.get()) {
            super::of(&b.shared, b.worker).deregister(self.fd, ready.clone());
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
