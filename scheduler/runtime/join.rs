//! Waiting for a coroutine: [`JoinHandle`], and [`Coroutine`], a handle to one.

use crate::sched::park::{self, Waiter};
use crate::sched::task::G;
use std::fmt;
use std::marker::PhantomData;
use std::thread;

/// An owned permission to wait for a coroutine and take its result.
///
/// Dropping it detaches the coroutine. `join` parks the calling coroutine, or blocks
/// the calling thread, until the coroutine ends.
pub struct JoinHandle<T> {
    g: G,
    _t: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// The handle of `g`, whose closure returns `T`.
    pub(crate) fn new(g: G) -> Self {
        JoinHandle { g, _t: PhantomData }
    }

    /// Waits for the coroutine to end and returns what its closure returned, or
    /// `Err(payload)` if it panicked, as `std::thread::JoinHandle::join` does. A
    /// coroutine unwound by corun gives a [`crate::Cancelled`] payload, one whose
    /// stack could not be mapped a [`crate::SpawnError`].
    ///
    /// ```
    /// let h = corun::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    ///
    /// `join` is a cancellation point: in a coroutine that is cancelled it unwinds
    /// instead of returning (see [`crate::Cancelled`]). Like any wait, it may let
    /// the worker's other coroutines run, even when the coroutine has ended.
    pub fn join(self) -> thread::Result<T> {
        crate::sched::cancel::checkpoint_current();
        // A loop joining finished coroutines never parks: it yields when asked.
        crate::sched::budget::checkpoint();
        let h = &self.g.header;
        // SAFETY: `join` consumes the only handle, so this is the only joiner.
        if !h.is_finished() && unsafe { h.set_joiner(Waiter::current()) } {
            while !h.is_finished() {
                park::park(park::Reason::Join, None, park::Cancel::Point);
            }
        }
        let mut out: Option<thread::Result<T>> = None;
        // SAFETY: `out` has this handle's `T`, which is the closure's result type (the
        // handle was made with it), and the coroutine has finished.
        unsafe { self.g.take_output(&mut out as *mut _ as *mut ()) };
        out.expect("a finished coroutine has a result")
    }

    /// Asks the coroutine to stop. At its next cancellation point (`park`,
    /// `yield_now`, `sleep`, `join`, and what waits through them; see
    /// [`crate::Cancelled`]) that call does not return: the coroutine's stack unwinds,
    /// running every destructor, and [`join`](JoinHandle::join) gives `Err` with a
    /// [`crate::Cancelled`] payload. A parked or sleeping coroutine is woken to do so
    /// at once; one that has not started yet never runs its closure (the closure is
    /// dropped). Returns immediately, without waiting for the coroutine to end.
    ///
    /// Returns false, doing nothing, if the coroutine has already ended: its
    /// result stands. True means the request was made; a coroutine that returns
    /// without reaching a cancellation point still ends with its own result.
    /// Cancelling twice is harmless.
    ///
    /// With `panic = "abort"` nothing can unwind, so `cancel` is unavailable: it does
    /// nothing and returns false.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// struct Guard(Arc<AtomicBool>);
    /// impl Drop for Guard {
    ///     fn drop(&mut self) {
    ///         self.0.store(true, Ordering::SeqCst); // a lock released, a file closed...
    ///     }
    /// }
    ///
    /// let released = Arc::new(AtomicBool::new(false));
    /// let guard = Guard(released.clone());
    /// let h = corun::spawn(move || {
    ///     let _guard = guard; // dropped by the unwind (or with the unrun closure)
    ///     loop {
    ///         corun::park(); // waits for something that never comes
    ///     }
    /// });
    /// assert!(h.cancel());
    /// let err = h.join().unwrap_err();
    /// assert!(err.downcast_ref::<corun::Cancelled>().is_some());
    /// assert!(released.load(Ordering::SeqCst));
    /// ```
    pub fn cancel(&self) -> bool {
        crate::sched::cancel::cancel(&self.g)
    }

    /// True once the coroutine has ended (returned, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.g.header.is_finished()
    }

    /// The coroutine's identity.
    pub fn coroutine(&self) -> Coroutine {
        Coroutine {
            w: Waiter::Coroutine(self.g.clone()),
            thread_id: 0,
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.g.header.id)
            .finish()
    }
}

/// A handle to a coroutine (or, outside one, to the calling thread): its id and
/// name, and [`Coroutine::unpark`] to wake it from [`crate::park`].
///
/// ```
/// let h = corun::spawn(|| corun::current().id());
/// let id = h.coroutine().id();
/// assert_eq!(h.join().unwrap(), id);
/// ```
#[derive(Clone)]
pub struct Coroutine {
    w: Waiter,
    thread_id: u64,
}

/// A coroutine's unique id. Plain threads get ids from the same sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId(u64);

impl CoroutineId {
    /// The id as a number.
    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl Coroutine {
    /// Its id.
    pub fn id(&self) -> CoroutineId {
        match &self.w {
            Waiter::Coroutine(g) => CoroutineId(g.header.id),
            Waiter::Thread(_) => CoroutineId(self.thread_id),
        }
    }

    /// Its name, if it was given one (a thread's name outside a coroutine).
    pub fn name(&self) -> Option<&str> {
        match &self.w {
            Waiter::Coroutine(g) => g.header.name(),
            Waiter::Thread(t) => t.thread.name(),
        }
    }

    /// True if this handle stands for a plain thread, not a coroutine.
    pub fn is_thread(&self) -> bool {
        matches!(self.w, Waiter::Thread(_))
    }

    /// Wakes it if it is parked in [`crate::park`], or makes its next `park` return
    /// at once.
    pub fn unpark(&self) {
        self.w.unpark();
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

thread_local! {
    static THREAD_ID: u64 = super::spawn::next_id();
}

/// The calling coroutine, or the calling thread outside one.
///
/// ```
/// let me = corun::current();
/// assert!(me.is_thread());
/// let h = corun::spawn(|| corun::current().is_thread());
/// assert!(!h.join().unwrap());
/// ```
pub fn current() -> Coroutine {
    match Waiter::current() {
        w @ Waiter::Coroutine(_) => Coroutine { w, thread_id: 0 },
        w => Coroutine {
            w,
            thread_id: thread_id(),
        },
    }
}

#[inline(never)]
fn thread_id() -> u64 {
    THREAD_ID.with(|i| *i)
}
