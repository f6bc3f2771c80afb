//! `OnceLock`: a value set once, whose readers park while it is being set.

use super::sema::{WaitOpts, WaitQueue, RETRY};
use crate::loom::sync::atomic::{AtomicU32, Ordering};
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;

const EMPTY: u32 = 0;
const RUNNING: u32 = 1;
const COMPLETE: u32 = 2;

/// A cell written once. [`get_or_init`](OnceLock::get_or_init) runs the initializer in
/// one caller; the others park (a coroutine frees its worker thread) until the value
/// is there. If the initializer panics (or its coroutine is cancelled), the cell stays
/// empty and one of the waiters runs its own initializer.
///
/// Calling `get_or_init` on the same cell from inside its initializer deadlocks.
///
/// ```
/// use corun::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// let hs: Vec<_> = (0..10)
///     .map(|_| corun::go!(|| CONFIG.get_or_init(|| "loaded".to_string()).len()))
///     .collect();
/// for h in hs {
///     assert_eq!(h.join().unwrap(), 6);
/// }
/// ```
pub struct OnceLock<T> {
    state: AtomicU32,
    queue: WaitQueue,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Another name for [`OnceLock`]: corun has one once-cell, and it is `Sync`.
///
/// ```
/// let c = corun::sync::OnceCell::new();
/// assert_eq!(*c.get_or_init(|| 7), 7);
/// ```
pub type OnceCell<T> = OnceLock<T>;

// SAFETY: the value is written once, by one caller (the RUNNING state excludes others),
// and published with a release store of COMPLETE; afterwards it is only read through
// `&T`. Sharing the cell shares `&T` (needs Sync) and may move a `T` in from another
// thread (needs Send).
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the `T` it may hold.
unsafe impl<T: Send> Send for OnceLock<T> {}

/// Resets the cell to empty if the initializer unwinds.
struct Reset<'a, T>(&'a OnceLock<T>);

impl<T> Drop for Reset<'_, T> {
    fn drop(&mut self) {
        self.0.state.store(EMPTY, Ordering::Release);
        self.0.queue.wake_all(RETRY);
    }
}

impl<T> OnceLock<T> {
    crate::loom::const_unless_loom! {
        /// An empty cell.
        ///
        /// ```
        /// let c: corun::sync::OnceLock<u8> = corun::sync::OnceLock::new();
        /// assert!(c.get().is_none());
        /// ```
        pub fn new() -> Self {
            OnceLock {
                state: AtomicU32::new(EMPTY),
                queue: WaitQueue::new(),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }
    }

    /// The value, if it is set.
    ///
    /// ```
    /// let c = corun::sync::OnceLock::new();
    /// c.set(3).unwrap();
    /// assert_eq!(c.get(), Some(&3));
    /// ```
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: COMPLETE is stored (release) after the value was written, and the
            // value is never written again while shared.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, through a unique borrow.
    ///
    /// ```
    /// let mut c = corun::sync::OnceLock::new();
    /// c.set(1).unwrap();
    /// *c.get_mut().unwrap() += 1;
    /// assert_eq!(c.get(), Some(&2));
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: set, and `&mut self` excludes every other access.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// Sets the value if the cell is empty; gives `value` back otherwise.
    ///
    /// ```
    /// let c = corun::sync::OnceLock::new();
    /// assert!(c.set(1).is_ok());
    /// assert_eq!(c.set(2), Err(2));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("initializer runs once"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, running `init` to set it if the cell is empty. While another caller
    /// runs its initializer, this one parks.
    ///
    /// ```
    /// let c = corun::sync::OnceLock::new();
    /// assert_eq!(*c.get_or_init(|| 1), 1);
    /// assert_eq!(*c.get_or_init(|| 2), 1);
    /// ```
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        self.initialize(init);
        self.get().expect("initialized")
    }

    #[cold]
    fn initialize(&self, init: impl FnOnce() -> T) {
        let mut init = Some(init);
        loop {
            match self
                .state
                .compare_exchange(EMPTY, RUNNING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    let reset = Reset(self);
                    let v = (init.take().expect("initializer runs once"))();
                    // SAFETY: RUNNING is ours: nobody else reads or writes the value
                    // until we store COMPLETE.
                    unsafe { (*self.value.get()).write(v) };
                    std::mem::forget(reset);
                    self.state.store(COMPLETE, Ordering::Release);
                    // Under the queue lock: a waiter that checked RUNNING under it is
                    // queued, one that checks after sees COMPLETE.
                    self.queue.wake_all(RETRY);
                    return;
                }
                Err(COMPLETE) => return,
                Err(_) => {
                    self.queue.wait(
                        WaitOpts {
                            reason: crate::sched::park::Reason::Once,
                            ..WaitOpts::default()
                        },
                        || self.state.load(Ordering::Acquire) == RUNNING,
                        || {},
                        |_| {},
                        |_| {},
                    );
                }
            }
        }
    }

    /// The value, if set, consuming the cell.
    ///
    /// ```
    /// let c = corun::sync::OnceLock::new();
    /// c.set("x").unwrap();
    /// assert_eq!(c.into_inner(), Some("x"));
    /// ```
    pub fn into_inner(mut self) -> Option<T> {
        let v = self.take();
        std::mem::forget(self);
        v
    }

    /// Takes the value out, leaving the cell empty.
    ///
    /// ```
    /// let mut c = corun::sync::OnceLock::new();
    /// c.set(5).unwrap();
    /// assert_eq!(c.take(), Some(5));
    /// assert!(c.get().is_none());
    /// ```
    pub fn take(&mut self) -> Option<T> {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            self.state.store(EMPTY, Ordering::Relaxed);
            // SAFETY: it was set, and the state now says empty, so it is read once.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: set, and we are its last user.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> Self {
        let c = OnceLock::new();
        let _ = c.set(value);
        c
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<unset>")),
        };
        d.finish()
    }
}
