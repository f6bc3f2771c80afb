//! `coroutine_local!`: storage that each coroutine has its own copy of.
//!
//! Every stack that runs code has one map of locals, held in a [`Slot`]: a coroutine's
//! (in its header), a generator's (in the `Generator`), a plain thread's (a
//! thread-local). The *active* slot is the one of the stack running now: the running
//! coroutine's, else the thread's, and a generator swaps its own slot into the active
//! one while it runs ([`enter`]), so code on a generator's stack sees the generator's
//! values.
//!
//! Why a borrow handed out by `with` stays valid: it points into the map of the stack
//! that `with` runs on, and that map is freed only once every frame on that stack has
//! ended, by [`Slot::teardown`]:
//! - a coroutine's, at the end of its entry function, after its closure returned;
//! - a generator's, when it is dropped, after its stack returned or was unwound;
//! - a thread's, by its thread-local destructor at thread exit.
//!
//! Values are never removed before then, and boxed, so adding keys moves none. The
//! teardown marks the slot destroyed for good: a `with` during or after it panics
//! instead of making a new map that nobody would free on the right thread. A map left
//! in a slot that is never torn down (a coroutine leaked by a `panic = "abort"`
//! shutdown) is leaked, never dropped elsewhere.

use super::context;
use std::any::Any;
use std::cell::Cell;
use std::fmt;

/// The locals of one stack: key address -> boxed value.
#[derive(Default)]
struct LocalMap {
    entries: Vec<(usize, Box<dyn Any>)>,
}

/// No map made yet.
const EMPTY: usize = 0;
/// Torn down: no map will be made again.
const DESTROYED: usize = 1;

/// Where one stack keeps its map: `EMPTY`, `DESTROYED`, or a `Box<LocalMap>` made by
/// `Box::into_raw`. It has no destructor: only [`Slot::teardown`] frees the map.
pub(crate) struct Slot(Cell<usize>);

impl Slot {
    pub(crate) const fn new() -> Slot {
        Slot(Cell::new(EMPTY))
    }

    /// The value for `key` in this slot's map, made with `init` on first use.
    fn get_or_init<T: 'static>(
        &self,
        key: usize,
        init: fn() -> T,
    ) -> Result<*const T, AccessError> {
        let map = match self.0.get() {
            DESTROYED => return Err(AccessError),
            EMPTY => {
                let p = Box::into_raw(Box::<LocalMap>::default());
                self.0.set(p as usize);
                p
            }
            p => p as *mut LocalMap,
        };
        // SAFETY: `map` came from `Box::into_raw` and is freed only by `teardown`,
        // which runs once no frame of this stack (so no caller of this function) is
        // left. No reference into `entries` is held across `init`, which may itself
        // add entries (or swap slots, which moves no map).
        if let Some((_, v)) = unsafe { &*map }.entries.iter().find(|(k, _)| *k == key) {
            return Ok(v.downcast_ref::<T>().expect("coroutine_local type") as *const T);
        }
        let b: Box<dyn Any> = Box::new(init());
        let p = b.downcast_ref::<T>().expect("coroutine_local type") as *const T;
        // SAFETY: as above.
        unsafe { &mut *map }.entries.push((key, b));
        Ok(p)
    }

    /// Frees the map, running its values' destructors here, and marks the slot
    /// destroyed first, so that a destructor calling `with` gets an error instead of a
    /// new map. Call it on the slot's own stack, once no frame of that stack borrows.
    pub(crate) fn teardown(&self) {
        let p = self.0.replace(DESTROYED);
        if p != EMPTY && p != DESTROYED {
            // SAFETY: made by `Box::into_raw` in `get_or_init`; the slot no longer
            // names it, so this is the only owner.
            drop(unsafe { Box::from_raw(p as *mut LocalMap) });
        }
    }

    fn swap(&self, other: &Slot) {
        self.0.swap(&other.0);
    }
}

/// A plain thread's slot: torn down at thread exit.
struct ThreadSlot(Slot);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        self.0.teardown();
    }
}

thread_local! {
    static THREAD_SLOT: ThreadSlot = const { ThreadSlot(Slot::new()) };
}

/// Runs `f` on the active slot; `Err` if it is a thread's and thread exit destroyed it.
#[inline(never)]
fn with_active<R>(f: impl FnOnce(&Slot) -> R) -> Result<R, AccessError> {
    match context::current_task_ptr() {
        // SAFETY: we run on this coroutine's stack (or a generator's run by it), so its
        // task is alive; only code running for this coroutine touches its slot.
        Some(t) => Ok(f(unsafe { &t.as_ref().header.locals })),
        None => THREAD_SLOT.try_with(|s| f(&s.0)).map_err(|_| AccessError),
    }
}

/// Makes `own` (a generator's slot) the active one until the guard drops, when the
/// two are swapped back. Does nothing if there is no active slot (thread exit).
pub(crate) fn enter(own: &Slot) -> Entered<'_> {
    let active = with_active(|a| {
        a.swap(own);
        a as *const Slot
    })
    .ok();
    Entered { own, active }
}

/// See [`enter`].
pub(crate) struct Entered<'a> {
    own: &'a Slot,
    active: Option<*const Slot>,
}

impl Entered<'_> {
    /// Tears down the entered slot's map (it sits in the active slot until the guard
    /// drops).
    pub(crate) fn teardown(&self) {
        match self.active {
            // SAFETY: as in `drop` below.
            Some(a) => unsafe { &*a }.teardown(),
            None => self.own.teardown(),
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(a) = self.active {
            // SAFETY: `a` is the slot that was active at `enter`, on this same stack
            // frame's behalf: the coroutine running this frame (alive while it runs)
            // or this thread's slot (alive until thread exit, which cannot begin
            // while this frame is on the stack).
            unsafe { &*a }.swap(self.own);
        }
    }
}

/// The error of [`LocalKey::try_with`]: the value was destroyed, or is being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot access a coroutine-local value during or after destruction")
    }
}

impl std::error::Error for AccessError {}

/// A key for coroutine-local storage, made by [`crate::coroutine_local!`].
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Runs `f` with this coroutine's value, made on first use. On a plain thread the
    /// value is per thread instead, and in a [`crate::Generator`]'s body per generator.
    ///
    /// # Panics
    /// If called while the coroutine's (or thread's, or generator's) locals are being
    /// destroyed, or after: from a coroutine-local value's destructor, say. Use
    /// [`LocalKey::try_with`] there.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.get() {
            // SAFETY: see the module docs: the map outlives this call.
            Ok(p) => f(unsafe { &*p }),
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`LocalKey::with`], but returns an error instead of panicking when the
    /// locals are being destroyed or already were.
    ///
    /// ```
    /// use std::cell::Cell;
    /// corun::coroutine_local!(static SEEN: Cell<u32> = Cell::new(0));
    ///
    /// struct Report;
    /// impl Drop for Report {
    ///     fn drop(&mut self) {
    ///         // The locals are being destroyed: no value to read any more.
    ///         assert!(SEEN.try_with(|s| s.get()).is_err());
    ///     }
    /// }
    /// corun::coroutine_local!(static REPORT: Report = Report);
    ///
    /// corun::spawn(|| {
    ///     REPORT.with(|_| ());
    ///     SEEN.with(|s| s.set(1));
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        let p = self.get()?;
        // SAFETY: see the module docs: the map outlives this call.
        Ok(f(unsafe { &*p }))
    }

    fn get(&'static self) -> Result<*const T, AccessError> {
        let key = self as *const Self as usize;
        with_active(|slot| slot.get_or_init(key, self.init))?
    }
}

/// Declares coroutine-local storage: each coroutine sees its own value, made by the
/// initializer on first access. Outside a coroutine it is per thread, and inside a
/// [`crate::Generator`]'s body per generator (a generator has a stack of its own).
///
/// The values of a coroutine are dropped on its own stack when its closure has
/// returned (a panic there is the coroutine's panic: `join` returns it).
///
/// ```
/// use std::cell::Cell;
/// corun::coroutine_local!(static HITS: Cell<u32> = Cell::new(0));
///
/// let a = corun::spawn(|| { HITS.with(|h| h.set(h.get() + 1)); HITS.with(|h| h.get()) });
/// let b = corun::spawn(|| HITS.with(|h| h.get()));
/// assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 0));
/// ```
#[macro_export]
macro_rules! coroutine_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr $(;)?) => {
        $(#[$attr])*
        $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new({
            fn __corun_init() -> $t {
                $init
            }
            __corun_init
        });
    };
}
