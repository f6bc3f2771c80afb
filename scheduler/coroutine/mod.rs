//! The coroutine layer: stacks and the context switch, and nothing of the scheduler.
//!
//! A [`Fiber`] is a function running on its own [`stack::Stack`]. Resuming it switches
//! the CPU onto that stack until the function suspends itself through its
//! [`Yielder`] or returns. The switch itself is corosensei's (about 2 ns a round trip
//! here); this layer adds the stacks (`stack`) and the overflow report (`overflow`).
//!
//! ```text
//!   worker thread stack                coroutine stack (mmapped, pooled)
//!   +--------------------+             +--------------------+  <- base (high)
//!   | scheduler loop     |  resume ->  | fiber entry        |
//!   | Fiber::resume      |             | user closure ...   |
//!   +--------------------+  <- suspend | Yielder::suspend   |
//!                                      |        ...         |
//!                                      +--------------------+
//!                                      | guard page         |  <- limit (low)
//!                                      +--------------------+
//! ```
//!
//! A `Fiber` is `!Send`: once it has run on a thread it stays there (see
//! `docs/safety.md`). The runtime wraps it in a type that may cross threads only
//! while unstarted, or under the `unsafe` migratable contract.

pub mod overflow;
pub mod stack;

use stack::Stack;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "corun supports x86_64 Linux only for now: its stacks and guard pages use Linux mmap/madvise"
);

/// Handle a running fiber uses to suspend itself, passing a value of type `Y` out.
pub struct Suspender<'a, Y> {
    yielder: &'a corosensei::Yielder<(), Y>,
    info: &'a overflow::OverflowInfo,
}

impl<Y> Suspender<'_, Y> {
    /// Switches back to whoever resumed this fiber; returns when it is resumed again.
    #[inline]
    pub fn suspend(&self, val: Y) {
        self.yielder.suspend(val);
        // SAFETY: `info` lives in the fiber's entry frame, which stays on the fiber's
        // mapped stack while it is suspended; the pointer is cleared when the fiber
        // returns or is unwound on drop (`Fiber::resume`, `Drop for Fiber`).
        unsafe { overflow::enter(self.info) };
    }
}

/// A function running on its own stack, suspended or not yet started.
pub struct Fiber<Y> {
    co: corosensei::Coroutine<(), Y, (), Stack>,
}

impl<Y: 'static> Fiber<Y> {
    /// Prepares `f` to run on `stack`; nothing runs until [`Fiber::resume`]. `name`
    /// (or `#id`) labels the fiber in the stack overflow report.
    ///
    /// `f` must not let a panic escape: the runtime catches panics at the root so
    /// that no unwind ever crosses the switch.
    pub fn new(
        stack: Stack,
        name: Option<&str>,
        id: u64,
        f: impl FnOnce(&Suspender<'_, Y>) + 'static,
    ) -> Fiber<Y> {
        let mut info = overflow::OverflowInfo::for_stack(&stack, name.unwrap_or(""));
        if name.is_none() {
            info.set_id(id);
        }
        let entry = move |y: &corosensei::Yielder<(), Y>, ()| {
            // `info` now lives on the fiber's own stack, at its top.
            // SAFETY: `info` outlives the fiber's run; the pointer is cleared when the
            // fiber returns or is unwound (see `Suspender::suspend`).
            unsafe { overflow::enter(&info) };
            f(&Suspender {
                yielder: y,
                info: &info,
            });
        };
        Fiber {
            co: corosensei::Coroutine::with_stack(stack, entry),
        }
    }

    /// Runs the fiber until it suspends (`Some(value)`) or returns (`None`).
    ///
    /// The overflow report's pointer is set by the fiber at each switch in; it is
    /// cleared only when the fiber returns, because a suspended fiber's info (on its
    /// live stack) stays valid, and a fault elsewhere does not match its guard page.
    #[inline]
    pub fn resume(&mut self) -> Option<Y> {
        match self.co.resume(()) {
            corosensei::CoroutineResult::Yield(y) => Some(y),
            corosensei::CoroutineResult::Return(()) => {
                overflow::leave();
                None
            }
        }
    }

    /// True once the function has returned.
    pub fn done(&self) -> bool {
        self.co.done()
    }

    /// Gives the stack back once the fiber has finished (or unwinds it first).
    pub fn into_stack(self) -> Stack {
        let mut this = std::mem::ManuallyDrop::new(self);
        if this.co.started() && !this.co.done() {
            this.co.force_unwind();
            overflow::leave();
        }
        // SAFETY: `this` is never used or dropped again; we move its only field out.
        let co = unsafe { std::ptr::read(&this.co) };
        co.into_stack()
    }
}

impl<Y> Drop for Fiber<Y> {
    fn drop(&mut self) {
        if self.co.started() && !self.co.done() {
            // Unwind it now (corosensei would do it in its own drop) so that the
            // overflow info it set, on the stack about to be released, is cleared after.
            self.co.force_unwind();
            overflow::leave();
        }
    }
}

/// A [`Fiber`] kept at the top of its own stack: an owning pointer of one word, so
/// whoever tracks the fiber (a coroutine's header) carries 8 bytes, not the fiber.
///
/// ```text
///   +----------------------+ <- stack base
///   | Fiber (this points)  |    reserved with Stack::reserve_top
///   +----------------------+ <- base the fiber's code sees
///   | fiber's frames ...   |
/// ```
pub struct FiberBox<Y> {
    ptr: std::ptr::NonNull<Fiber<Y>>,
}

impl<Y: 'static> FiberBox<Y> {
    /// As [`Fiber::new`], storing the fiber at the top of `stack`.
    pub fn new(
        mut stack: Stack,
        name: Option<&str>,
        id: u64,
        f: impl FnOnce(&Suspender<'_, Y>) + 'static,
    ) -> FiberBox<Y> {
        const { assert!(std::mem::align_of::<Fiber<Y>>() <= 64) };
        let slot = stack.reserve_top(std::mem::size_of::<Fiber<Y>>()) as *mut Fiber<Y>;
        let fiber = Fiber::new(stack, name, id, f);
        // SAFETY: `slot` is 64-byte aligned, writable, and above every address the
        // fiber's code uses (the reservation lowered the base it runs from); the
        // stack lives as long as the fiber, which we own from here on.
        unsafe { slot.write(fiber) };
        FiberBox {
            ptr: std::ptr::NonNull::new(slot).expect("stack address is not null"),
        }
    }

    /// See [`Fiber::resume`].
    #[inline]
    pub fn resume(&mut self) -> Option<Y> {
        // SAFETY: we own the fiber at `ptr` (written in `new`, read out only by
        // `into_stack`/`drop`, which consume or end us).
        unsafe { self.ptr.as_mut() }.resume()
    }

    /// See [`Fiber::into_stack`]; the reservation is released.
    pub fn into_stack(self) -> Stack {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: we own the fiber and never touch `ptr` again.
        let fiber = unsafe { this.ptr.as_ptr().read() };
        let mut stack = fiber.into_stack();
        stack.unreserve_top();
        stack
    }
}

impl<Y> Drop for FiberBox<Y> {
    fn drop(&mut self) {
        // SAFETY: we own the fiber; moving it off its stack before dropping it means
        // its stack (which it owns) is never freed while the value still lives there.
        drop(unsafe { self.ptr.as_ptr().read() });
    }
}
