//! Channels, as Go's: bounded, rendezvous and unbounded, multi-producer and
//! multi-consumer, with [`select!`](crate::select) and timer channels.
//!
//! A waiting operation parks its coroutine (its worker runs others meanwhile) or, on
//! a plain thread, blocks the thread; coroutines and threads may share a channel.
//!
//! ```
//! use corun::chan;
//!
//! let (tx, rx) = chan::bounded(0); // rendezvous, as Go's `make(chan int)`
//! let producer = corun::go!(move || {
//!     for i in 0..5 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last Sender closes the channel
//! });
//! let got: Vec<i32> = rx.iter().collect(); // ends once the channel is closed and drained
//! assert_eq!(got, [0, 1, 2, 3, 4]);
//! producer.join().unwrap();
//! ```
//!
//! Closing follows the ends: when every [`Sender`] is gone (or one calls
//! [`Sender::close`], Go's `close(ch)`), receivers drain what is buffered and then get
//! [`RecvError`]; when every [`Receiver`] is gone (or after `close`), `send` gives
//! the value back in [`SendError`]. No value is lost or received twice.
//!
//! Design (see `docs/architecture.md`): one short lock per channel around a buffer and
//! two wait queues; a sender that finds a parked receiver hands the value straight to
//! it, and the wake of a coroutine on the waker's own worker goes to `runnext`.

mod channel;
mod error;
mod select;
mod timer;
mod waiters;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use timer::{after, tick};

use crate::sched::interrupt::Until;
use channel::Chan;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items used by the [`select!`](crate::select) macro; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{select, Case, Mode, RecvCase, SendCase};
}

/// What both ends of a channel have alike: its state, clones, drops, `Debug`.
macro_rules! channel_end {
    ($End:ident, $end:literal, $pick:tt, $add:ident, $drop:ident) => {
        impl<T> $End<T> {
            /// Values buffered now.
            ///
            /// ```
            /// let (tx, rx) = corun::chan::unbounded();
            /// tx.send(1).unwrap();
            #[doc = concat!("assert_eq!(", $end, ".len(), 1);")]
            /// ```
            pub fn len(&self) -> usize {
                self.chan.len()
            }

            /// Whether nothing is buffered now.
            ///
            /// ```
            /// let (tx, rx) = corun::chan::bounded::<u8>(4);
            #[doc = concat!("assert!(", $end, ".is_empty());")]
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The buffer size: `Some(cap)` for [`bounded`], `None` for [`unbounded`].
            ///
            /// ```
            #[doc = concat!("assert_eq!(corun::chan::bounded::<u8>(0).", stringify!($pick), ".capacity(), Some(0));")]
            #[doc = concat!("assert_eq!(corun::chan::unbounded::<u8>().", stringify!($pick), ".capacity(), None);")]
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                self.chan.capacity()
            }

            /// Whether `self` and `other` are ends of the same channel.
            ///
            /// ```
            /// let (tx, rx) = corun::chan::unbounded::<u8>();
            #[doc = concat!("assert!(", $end, ".same_channel(&", $end, ".clone()));")]
            /// ```
            pub fn same_channel(&self, other: &$End<T>) -> bool {
                Arc::ptr_eq(&self.chan, &other.chan)
            }

            fn chan(&self) -> &Chan<T> {
                &self.chan
            }
        }

        impl<T> Clone for $End<T> {
            fn clone(&self) -> Self {
                self.chan.$add();
                $End {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $End<T> {
            fn drop(&mut self) {
                self.chan.$drop();
            }
        }

        impl<T> fmt::Debug for $End<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($End), " { .. }"))
            }
        }
    };
}

/// A channel holding up to `cap` values; `cap = 0` makes a rendezvous channel, where
/// each `send` waits for a `recv` to take the value, as Go's unbuffered `chan`.
///
/// ```
/// let (tx, rx) = corun::chan::bounded(2);
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert!(tx.try_send("c").is_err()); // full
/// assert_eq!(rx.recv(), Ok("a"));
/// assert_eq!(tx.capacity(), Some(2));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(Some(cap)));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A channel without a limit: `send` never waits.
///
/// ```
/// let (tx, rx) = corun::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(tx.capacity(), None);
/// drop(tx);
/// assert_eq!(rx.iter().sum::<i32>(), 499_500);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(None));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

fn deadline(timeout: Duration) -> Option<Instant> {
    // A timeout too large to add is as good as none.
    Instant::now().checked_add(timeout)
}

/// The sending end of a channel; clone it for more producers.
///
/// ```
/// let (tx, rx) = corun::chan::unbounded();
/// let hs: Vec<_> = (0..4)
///     .map(|i| {
///         let tx = tx.clone();
///         corun::go!(move || tx.send(i).unwrap())
///     })
///     .collect();
/// drop(tx);
/// let mut got: Vec<i32> = rx.iter().collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2, 3]);
/// for h in hs {
///     h.join().unwrap();
/// }
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full (or, for a rendezvous channel,
    /// until a receiver takes it). Fails, giving the value back, once every receiver
    /// is gone.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::bounded(0);
    /// let h = corun::go!(move || rx.recv().unwrap());
    /// tx.send(42).unwrap(); // returns once the coroutine has it
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan
            .send(value, Until::NEVER)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::bounded(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(tx.try_send(2).unwrap_err().is_full());
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// As [`send`](Self::send), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = corun::chan::bounded(1);
    /// tx.send_timeout(1, Duration::from_millis(5)).unwrap();
    /// assert!(tx.send_timeout(2, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// drop(rx);
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, Until::at(deadline(timeout)))
    }

    /// As [`send`](Self::send), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = corun::chan::bounded(0);
    /// let at = Instant::now() + Duration::from_millis(5);
    /// assert!(tx.send_deadline(1, at).unwrap_err().is_timeout());
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, Until::at(Some(deadline)))
    }

    /// Closes the channel, as Go's `close(ch)`, while this and other senders remain:
    /// receivers get what is buffered, then [`RecvError`]; every send after it (and
    /// every send waiting now) fails with [`SendError`], giving its value back. A
    /// `select!` arm on the channel sees it as closed. Returns false, doing nothing,
    /// if it was closed already (so any sender may call it; Go would panic).
    ///
    /// ```
    /// let (tx, rx) = corun::chan::bounded(4);
    /// let tx2 = tx.clone();
    /// tx.send(1).unwrap();
    /// assert!(tx2.close());
    /// assert!(!tx.close()); // already closed
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// assert_eq!(rx.recv(), Ok(1)); // drained first...
    /// assert!(rx.recv().is_err()); // ...then closed, though `tx` lives
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Sends unless `until` passes first (`Timeout`): the context forms.
    pub(crate) fn send_until(&self, value: T, until: Until<'_>) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, until)
    }
}

channel_end!(Sender, "tx", 0, add_sender, drop_sender);

/// The receiving end of a channel; clone it for more consumers. It is an iterator
/// source: `for v in &rx` receives until the channel is closed and drained.
///
/// ```
/// let (tx, rx) = corun::chan::bounded(8);
/// let h = corun::go!(move || (1..=3).for_each(|i| tx.send(i).unwrap()));
/// let mut sum = 0;
/// for v in &rx {
///     sum += v;
/// }
/// assert_eq!(sum, 6);
/// h.join().unwrap();
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty. Fails once the channel is
    /// empty and every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::unbounded();
    /// corun::go!(move || tx.send("hi").unwrap());
    /// assert_eq!(rx.recv(), Ok("hi"));
    /// assert!(rx.recv().is_err()); // the sender is gone
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(Until::NEVER).map_err(|_| RecvError)
    }

    /// Receives a value if one is there now.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::bounded(1);
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = corun::chan::bounded::<i32>(1);
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// drop(tx);
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_disconnected());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Until::at(deadline(timeout)))
    }

    /// As [`recv`](Self::recv), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_tx, rx) = corun::chan::unbounded::<()>();
    /// let at = Instant::now() + Duration::from_millis(5);
    /// assert!(rx.recv_deadline(at).unwrap_err().is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Until::at(Some(deadline)))
    }

    /// Receives unless `until` passes first (`Timeout`): the context forms.
    pub(crate) fn recv_until(&self, until: Until<'_>) -> Result<T, RecvTimeoutError> {
        self.chan.recv(until)
    }

    /// A blocking iterator: each `next` is a [`recv`](Self::recv); it ends when the
    /// channel is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values there now.
    ///
    /// ```
    /// let (tx, rx) = corun::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().count(), 2); // tx still alive: does not wait for more
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

channel_end!(Receiver, "rx", 1, add_receiver, drop_receiver);

/// Blocking iterator over a [`Receiver`], from [`Receiver::iter`] or `&rx`.
///
/// ```
/// let (tx, rx) = corun::chan::unbounded();
/// tx.send(5).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(5));
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator over a [`Receiver`], from [`Receiver::try_iter`].
///
/// ```
/// let (_tx, rx) = corun::chan::unbounded::<u8>();
/// assert_eq!(rx.try_iter().next(), None);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator over a [`Receiver`], from `rx.into_iter()`.
///
/// ```
/// let (tx, rx) = corun::chan::unbounded();
/// tx.send('x').unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<String>(), "x");
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/chan.rs"]
mod loom_tests;
