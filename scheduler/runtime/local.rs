//! `coroutine_local!`: storage that each coroutine has its own copy of.

use super::context;
use std::any::Any;
use std::cell::RefCell;

/// The locals of one coroutine (or thread): key address -> boxed value.
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: Vec<(usize, Box<dyn Any>)>,
}

impl LocalMap {
    /// The value for `key`, made with `init` on first use. The box never moves, so the
    /// pointer stays valid while the map lives, even if `init` or the caller add keys.
    fn get_or_init<T: 'static>(map: *mut LocalMap, key: usize, init: fn() -> T) -> *const T {
        // SAFETY: `map` is the caller's own map; no reference into `entries` is held
        // across `init`, which may itself add entries.
        if let Some((_, v)) = unsafe { &*map }.entries.iter().find(|(k, _)| *k == key) {
            return v.downcast_ref::<T>().expect("coroutine_local type") as *const T;
        }
        let b: Box<dyn Any> = Box::new(init());
        let p = b.downcast_ref::<T>().expect("coroutine_local type") as *const T;
        // SAFETY: as above.
        unsafe { &mut *map }.entries.push((key, b));
        p
    }
}

thread_local! {
    static THREAD_MAP: RefCell<LocalMap> = RefCell::new(LocalMap::default());
}

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
    /// value is per thread instead.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let p = match context::current_task_ptr() {
            Some(t) => {
                // SAFETY: we run on this coroutine's stack, so its task is alive, and
                // only the coroutine itself touches `locals`.
                let slot = unsafe { &mut *t.as_ref().header.locals.get() };
                let map: *mut LocalMap = &mut **slot.get_or_insert_with(Default::default);
                LocalMap::get_or_init(map, key, self.init)
            }
            None => thread_map(|map| LocalMap::get_or_init(map, key, self.init)),
        };
        // SAFETY: the value is boxed in a map that lives as long as the coroutine (or
        // thread), which outlives this call; values are never removed before then.
        f(unsafe { &*p })
    }
}

#[inline(never)]
fn thread_map<R>(f: impl FnOnce(*mut LocalMap) -> R) -> R {
    THREAD_MAP.with(|m| f(m.as_ptr()))
}

/// Declares coroutine-local storage: each coroutine sees its own value, made by the
/// initializer on first access. Outside a coroutine it is per thread.
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
