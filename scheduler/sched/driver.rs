//! The IO driver: what an idle worker sleeps in besides its condition variable.
//!
//! The core owns this interface and `netpoll` implements it (one epoll per worker),
//! so the core never names the netpoller. A worker polls its [`Driver`] without
//! blocking now and then, and sleeps in it when it has descriptors registered;
//! other threads reach the worker's [`DriverHandle`] to learn whether it polls at all
//! and to wake it out of a blocking poll.

use std::any::Any;
use std::time::Duration;

/// A worker's own half: only that worker polls it.
pub(crate) trait Driver: Send {
    /// Waits up to `timeout` (`None`: until an event or [`DriverHandle::wake`]),
    /// wakes the coroutines waiting on what happened, and returns how many events
    /// it handled. A timeout is never cut short (it is rounded up).
    fn poll(&mut self, timeout: Option<Duration>) -> usize;
    /// The thread that polled this ends (a dedicated thread): what still waits on
    /// it must find another poller.
    fn retire(&mut self) {}
}

/// The half every thread may use.
pub(crate) trait DriverHandle: Send + Sync {
    /// Whether the worker has anything to poll for; it skips its driver if not.
    fn is_active(&self) -> bool;
    /// Interrupts the worker if it is blocked in [`Driver::poll`].
    fn wake(&self);
    /// The implementation, for the client that registers with it.
    fn as_any(&self) -> &dyn Any;
}

/// A worker's driver: both halves.
pub(crate) type Io = (Box<dyn Driver>, std::sync::Arc<dyn DriverHandle>);
