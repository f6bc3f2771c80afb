//! The netpoller: one edge-triggered epoll instance per runtime (through `mio`),
//! polled by the workers themselves, as Go's netpoller is. There is no poller thread.
//!
//! - A descriptor is registered once, for both directions, the first time a
//!   coroutine would block on it ([`Netpoll::register`]). Operations are tried first;
//!   only one that fails with `WouldBlock` parks (see [`readiness`]).
//! - A worker that runs out of work polls without blocking (`poll_now`) before it
//!   sleeps, and every 61 ticks while busy, so ready sockets are not starved.
//! - A worker about to sleep while descriptors are registered takes the poller
//!   ([`Netpoll::try_block`]) and sleeps in `epoll_wait` until its earliest timer;
//!   waking it (new work, shutdown) goes through the poller's waker (an eventfd).
//!   The others sleep on their condition variables; only one thread is in
//!   `epoll_wait` at a time.
//! - An edge wakes the coroutines waiting for it through the park interface: one
//!   homed on the polling worker goes to that worker's own queue at no cost, one
//!   homed elsewhere to its worker's inbox.
//!
//! With no descriptor registered none of this runs: the scheduler's idle path is the
//! same as without a poller, and no `epoll_wait` is ever made.

pub(crate) mod readiness;
pub(crate) mod source;

use crate::runtime::park::Waiter;
use readiness::{Dir, Readiness};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token of the poller's own waker; every other token is a `Readiness` address.
const WAKER: mio::Token = mio::Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// The readiness of a registered descriptor, as its IO operations see it.
pub(crate) type Ready = Readiness<Waiter>;

struct Poller {
    poll: mio::Poll,
    events: mio::Events,
}

pub(crate) struct Netpoll {
    /// Held by whoever polls; so polls never overlap (the release rule needs that).
    poller: parking_lot::Mutex<Poller>,
    registry: mio::Registry,
    waker: mio::Waker,
    /// Descriptors registered now; 0 means the workers skip the poller entirely.
    registered: AtomicUsize,
    /// Deregistered descriptors' readiness, kept alive until the next poll starts:
    /// a poll that was under way when they were deregistered may still hold their
    /// tokens in its event buffer.
    released: parking_lot::Mutex<Vec<Arc<Ready>>>,
}

impl Netpoll {
    pub(crate) fn new() -> io::Result<Netpoll> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Netpoll {
            poller: parking_lot::Mutex::new(Poller {
                poll,
                events: mio::Events::with_capacity(EVENTS),
            }),
            registry,
            waker,
            registered: AtomicUsize::new(0),
            released: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Whether any descriptor is registered (workers poll only then).
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.registered.load(Ordering::Relaxed) != 0
    }

    /// Adds `fd`, edge-triggered, for both directions.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Arc<Ready>> {
        let ready = Arc::new(Readiness::new());
        let token = mio::Token(Arc::as_ptr(&ready) as usize);
        self.registry.register(
            &mut mio::unix::SourceFd(&fd),
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(ready)
    }

    /// Removes `fd` (before it is closed); `ready` lives until the next poll starts.
    pub(crate) fn deregister(&self, fd: RawFd, ready: Arc<Ready>) {
        // An error here means the descriptor is already gone from the set (closed
        // elsewhere); there is nothing left to undo.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.registered.fetch_sub(1, Ordering::Relaxed);
        self.released.lock().push(ready);
    }

    /// Polls without blocking if nobody else is polling; returns the number of
    /// descriptors that had events.
    pub(crate) fn poll_now(&self) -> usize {
        match self.poller.try_lock() {
            Some(mut p) => self.poll(&mut p, Some(Duration::ZERO)),
            None => 0,
        }
    }

    /// The right to block in the poller, if no other worker is polling.
    pub(crate) fn try_block(&self) -> Option<Blocker<'_>> {
        self.poller
            .try_lock()
            .map(|guard| Blocker { np: self, guard })
    }

    /// Interrupts a worker blocked in the poller.
    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            // An eventfd write fails only if the descriptor is gone: a bug.
            panic!("corun: cannot wake the netpoller: {e}");
        }
    }

    fn poll(&self, p: &mut Poller, timeout: Option<Duration>) -> usize {
        // Every poll that began before these were deregistered has ended (we hold
        // the poller), and later polls cannot return their tokens.
        drop(std::mem::take(&mut *self.released.lock()));
        let Poller { poll, events } = p;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                return 0;
            }
            panic!("corun: epoll_wait failed: {e}");
        }
        let mut n = 0;
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            // SAFETY: a token other than WAKER is the address of a `Ready` that was
            // registered and is alive: its `Arc` is held by its IO source until it
            // is deregistered, then by `released` until a poll starts after that,
            // and this poll started before (we hold the poller and cleared
            // `released` above, so nothing it returns was released before then).
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
}

/// The poller, held by a worker that is about to sleep in it.
pub(crate) struct Blocker<'a> {
    np: &'a Netpoll,
    guard: parking_lot::MutexGuard<'a, Poller>,
}

impl Blocker<'_> {
    /// Blocks until an event, the waker, or `deadline`; then wakes the waiters.
    pub(crate) fn wait(mut self, deadline: Option<Instant>) -> usize {
        // epoll counts in milliseconds: round up, so a timer is never fired early.
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Duration::from_millis(left.as_nanos().div_ceil(1_000_000) as u64)
        });
        self.np.poll(&mut self.guard, timeout)
    }
}
