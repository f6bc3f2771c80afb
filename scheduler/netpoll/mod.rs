//! The netpoller: an edge-triggered epoll instance per worker (through `mio`), waited
//! in by that worker itself, as Go's netpoller is woven into its scheduler. There is
//! no poller thread.
//!
//! - A descriptor is registered once, for both directions, with the poller of the
//!   worker whose coroutine first waits on it ([`NetRemote::register`]). Operations
//!   are tried first; only one that fails with `WouldBlock` parks (see [`readiness`]).
//! - A worker polls its poller without blocking when it runs out of work, and every
//!   61 ticks while busy, so ready sockets are not starved.
//! - A worker with descriptors registered sleeps in `epoll_wait` (until its earliest
//!   timer) instead of on its condition variable; waking it (new work, shutdown)
//!   goes through its poller's waker, an eventfd.
//! - An edge wakes the coroutines waiting for it through the park interface.
//!
//! Why one poller per worker rather than Go's one per process: a started coroutine
//! never leaves its worker (see `docs/safety.md`), so the readiness of its socket is
//! best reported to that worker. One shared poller hands most edges to the wrong
//! thread, which then pushes them to the right one's inbox and wakes it: two thread
//! wake-ups per event instead of none.
//!
//! With no descriptor registered on a worker none of this runs there: its idle path
//! is the same as without a poller, and it makes no `epoll_wait`.

pub(crate) mod readiness;
pub(crate) mod source;

use crate::sched::driver::{Driver, DriverHandle, Io};
use crate::sched::park::Waiter;
use crate::sched::shared::Shared;
use readiness::{Dir, Readiness};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The token of the poller's own waker; every other token is a `Readiness` address.
const WAKER: mio::Token = mio::Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// The readiness of a registered descriptor, as its IO operations see it.
pub(crate) type Ready = Readiness<Waiter>;

/// A worker's epoll instance: only its worker waits in it.
struct Poller {
    poll: mio::Poll,
    events: mio::Events,
    net: Arc<NetRemote>,
}

/// A dedicated slot's registrations: descriptor and readiness.
type Tracked = Vec<(RawFd, Arc<Ready>)>;

/// What other threads may do with a worker's poller: register, deregister, wake.
pub(crate) struct NetRemote {
    registry: mio::Registry,
    waker: mio::Waker,
    /// Descriptors registered now; 0 means the worker skips its poller entirely.
    registered: AtomicUsize,
    /// Deregistered descriptors' readiness, kept alive until the worker's next poll
    /// starts: the poll under way when they were deregistered may still hold their
    /// tokens in its event buffer.
    released: crate::loom::sync::Mutex<Vec<Arc<Ready>>>,
    /// Bumped when a dedicated thread that polled this retires (`Driver::retire`):
    /// a descriptor bound at an older generation is polled by nobody, and moves to
    /// the poller of the next coroutine that waits on it.
    generation: AtomicU64,
    /// A dedicated slot's poller keeps what is registered with it, to wake their
    /// waiters when its thread retires (a worker's does not: it never retires).
    tracked: Option<crate::loom::sync::Mutex<Tracked>>,
}

/// A poller for one worker (or, `dedicated`, one dedicated thread's slot), as the
/// core's IO driver: the worker's half and the handle the other threads use.
pub(crate) fn new(dedicated: bool) -> io::Result<Io> {
    let poll = mio::Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let waker = mio::Waker::new(poll.registry(), WAKER)?;
    let net = Arc::new(NetRemote {
        registry,
        waker,
        registered: AtomicUsize::new(0),
        released: crate::loom::sync::Mutex::new(Vec::new()),
        generation: AtomicU64::new(0),
        tracked: dedicated.then(|| crate::loom::sync::Mutex::new(Vec::new())),
    });
    let poller = Poller {
        poll,
        events: mio::Events::with_capacity(EVENTS),
        net: net.clone(),
    };
    Ok((Box::new(poller), net))
}

/// The netpoller of worker `worker` of a runtime.
pub(crate) fn of(shared: &Shared, worker: usize) -> &NetRemote {
    shared.remotes[worker]
        .io
        .as_any()
        .downcast_ref::<NetRemote>()
        .expect("every worker's IO driver is a netpoller")
}

impl NetRemote {
    /// Adds `fd`, edge-triggered, for both directions, reporting to `ready`, which
    /// the caller keeps alive until it calls `deregister`.
    pub(crate) fn register(&self, fd: RawFd, ready: &Arc<Ready>) -> io::Result<()> {
        let token = mio::Token(Arc::as_ptr(ready) as usize);
        self.registry.register(
            &mut mio::unix::SourceFd(&fd),
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        self.registered.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &self.tracked {
            t.lock().push((fd, ready.clone()));
        }
        Ok(())
    }

    /// Which generation of its thread the poller serves (see `generation`).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Removes `fd` (before it is closed); `ready` lives until the next poll starts.
    pub(crate) fn deregister(&self, fd: RawFd, ready: Arc<Ready>) {
        // An error here means the descriptor is already gone from the set (closed
        // elsewhere); there is nothing left to undo.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.registered.fetch_sub(1, Ordering::Relaxed);
        if let Some(t) = &self.tracked {
            t.lock().retain(|(f, _)| *f != fd);
        }
        self.released.lock().push(ready);
    }
}

impl DriverHandle for NetRemote {
    /// Whether any descriptor is registered (the worker polls only then).
    #[inline]
    fn is_active(&self) -> bool {
        self.registered.load(Ordering::Relaxed) != 0
    }

    /// Interrupts the worker if it is blocked in its poller.
    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            // An eventfd write fails only if the descriptor is gone: a bug.
            panic!("corun: cannot wake the netpoller: {e}");
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Driver for Poller {
    /// Waits up to `timeout` (`None`: until an event or the waker) and wakes the
    /// waiters of every edge; returns how many descriptors had events. Only the
    /// owning worker calls this.
    fn poll(&mut self, timeout: Option<Duration>) -> usize {
        // epoll counts in milliseconds: round up, so that no timer fires early.
        let timeout =
            timeout.map(|t| Duration::from_millis(t.as_nanos().div_ceil(1_000_000) as u64));
        // Every poll that began before these were deregistered has ended (only this
        // worker polls, and it is here), and later polls cannot return their tokens.
        let released = std::mem::take(&mut *self.net.released.lock());
        drop(released);
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                return 0;
            }
            panic!("corun: epoll_wait failed: {e}");
        }
        let mut n = 0;
        for ev in self.events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            // SAFETY: a token other than WAKER is the address of a `Ready` registered
            // with this poller and alive: its `Arc` is held by its IO source until it
            // is deregistered, then by `released` until a poll of this poller starts
            // after that; this poll started before (it emptied `released` first, and
            // nothing it returns can have been deregistered before its start).
            let ready = unsafe { &*(ev.token().0 as *const Ready) };
            n += 1;
            let err = ev.is_error();
            if ev.is_readable() || ev.is_read_closed() || err {
                ready.fire(Dir::Read, |w| w.unpark());
            }
            if ev.is_writable() || ev.is_write_closed() || err {
                ready.fire(Dir::Write, |w| w.unpark());
            }
        }
        n
    }

    /// Its dedicated thread ends: nobody polls this any more. Descriptors still
    /// registered here (handed to other coroutines) are marked stale and their
    /// waiters woken, so each moves to the poller of the next coroutine that waits.
    fn retire(&mut self) {
        self.net.generation.fetch_add(1, Ordering::AcqRel);
        let Some(tracked) = &self.net.tracked else {
            return;
        };
        let still: Vec<Arc<Ready>> = tracked.lock().iter().map(|(_, r)| r.clone()).collect();
        for ready in still {
            ready.fire(Dir::Read, |w| w.unpark());
            ready.fire(Dir::Write, |w| w.unpark());
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one, once per process, as
/// Go does at start-up: a server holding thousands of connections should not fail
/// at the soft default (often 1024). Child processes inherit the raised limit.
pub(crate) fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit for the call to fill in.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            // SAFETY: `lim` is a valid rlimit; failure leaves the limit as it was.
            let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        }
    });
}
