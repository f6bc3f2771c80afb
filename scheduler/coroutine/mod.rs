//! The coroutine layer: stacks and the context switch, and nothing of the scheduler.
//!
//! A [`Fiber`] is a function running on its own [`stack::Stack`]. Resuming it switches
//! the CPU onto that stack until the function suspends itself through its
//! [`Suspender`] or returns; each resume may pass a value in and each suspend one
//! out. The switch itself is corosensei's (about 3 ns a round trip here); this layer
//! adds the stacks (`stack`) and the overflow report (`overflow`).
//!
//! Fibers nest: a fiber may resume another from its own stack (a generator run by a
//! coroutine, or by another generator), and the innermost one may even switch the
//! outer one out (a coroutine that parks while running a generator's code). The
//! overflow report follows: every switch point saves which fiber's info was current
//! on its stack and restores it when control comes back there.
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
//! `docs/safety.md`). Dropping a suspended fiber unwinds its stack first. The runtime wraps it in a type that may cross threads only
//! while unstarted, or under the `unsafe` migratable contract.

pub mod overflow;
pub mod stack;

use stack::Stack;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "corun supports x86_64 Linux only for now: its stacks and guard pages use Linux mmap/madvise"
);

/// Handle a running fiber uses to suspend itself, passing a value of type `Y` out
/// and receiving the next resume's input `I`.
///
/// It is corosensei's `Yielder` seen through a transparent wrapper: a fiber's entry
/// gets it by reference, and it cannot leave the fiber's thread (it is `!Sync`).
#[repr(transparent)]
pub struct Suspender<Y, I = ()> {
    yielder: corosensei::Yielder<I, Y>,
}

impl<Y, I> Suspender<Y, I> {
    /// Views corosensei's yielder as ours.
    fn from_yielder(y: &corosensei::Yielder<I, Y>) -> &Suspender<Y, I> {
        // SAFETY: `Suspender` is `repr(transparent)` over `Yielder<I, Y>`, so the two
        // have one layout and the reference keeps its lifetime and provenance.
        unsafe { &*(y as *const corosensei::Yielder<I, Y> as *const Suspender<Y, I>) }
    }

    /// Switches back to whoever resumed this fiber; returns the input of the next
    /// resume.
    ///
    /// If the fiber is dropped while suspended here, this unwinds instead (so that
    /// its stack's destructors run) and never returns.
    #[inline]
    pub fn suspend(&self, val: Y) -> I {
        // What runs here now: this fiber's info, or a nested fiber's when a coroutine
        // switches out from inside a generator's stack. Put back on return, also when
        // the fiber is unwound from here (see `Fiber`'s `Drop`).
        let _back = Restore(overflow::saved());
        self.yielder.suspend(val)
    }
}

/// Puts back the overflow info saved before a switch once control returns to the
/// stack that saved it (normally or by unwinding).
struct Restore(*const overflow::OverflowInfo);

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the pointer was `saved()` on this same stack before the switch; the
        // info it names belongs to the fiber running on this stack (or is null), whose
        // entry frame is alive while code runs here.
        unsafe { overflow::restore(self.0) }
    }
}

/// What a resume ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiberResult<Y, R> {
    /// The fiber suspended itself with this value.
    Yield(Y),
    /// The fiber's function returned this value; it cannot be resumed again.
    Return(R),
}

/// A function running on its own stack, suspended or not yet started.
///
/// `Y` is what it passes out when it suspends, `I` what each resume passes in and
/// `R` what it returns; the runtime uses `Fiber<Request>` (no input, no result).
pub struct Fiber<Y, I = (), R = ()> {
    /// `None` only after `into_stack` took it apart.
    co: Option<corosensei::Coroutine<I, Y, R, Stack>>,
}

impl<Y: 'static, I: 'static, R: 'static> Fiber<Y, I, R> {
    /// Prepares `f` to run on `stack`; nothing runs until the first resume, whose
    /// input is `f`'s second argument. `name` (or `#id`) labels the fiber in the
    /// stack overflow report.
    ///
    /// A panic escaping `f` ends the fiber and continues in whoever resumed it
    /// (corosensei catches it at the root of the fiber's stack and resumes it on the
    /// other side of the switch). The runtime catches its coroutines' panics itself.
    pub fn new(
        stack: Stack,
        name: Option<&str>,
        id: u64,
        f: impl FnOnce(&Suspender<Y, I>, I) -> R + 'static,
    ) -> Fiber<Y, I, R> {
        let mut info = overflow::OverflowInfo::for_stack(&stack, name.unwrap_or(""));
        if name.is_none() {
            info.set_id(id);
        }
        let entry = move |y: &corosensei::Yielder<I, Y>, input: I| {
            // `info` now lives on the fiber's own stack, at its top.
            // SAFETY: `info` outlives the fiber's run; whoever resumed the fiber
            // restores its own info when the fiber switches out or ends.
            unsafe { overflow::enter(&info) };
            f(Suspender::from_yielder(y), input)
        };
        Fiber {
            co: Some(corosensei::Coroutine::with_stack(stack, entry)),
        }
    }
}

impl<Y, I, R> Fiber<Y, I, R> {
    fn co(&mut self) -> &mut corosensei::Coroutine<I, Y, R, Stack> {
        self.co.as_mut().expect("fiber was taken apart")
    }

    /// Runs the fiber, passing `input` in, until it suspends or returns. A panic
    /// that escaped the fiber's function continues here.
    ///
    /// # Panics
    /// If the fiber has already returned.
    #[inline]
    pub fn resume_with(&mut self, input: I) -> FiberResult<Y, R> {
        let _back = Restore(overflow::saved());
        match self.co().resume(input) {
            corosensei::CoroutineResult::Yield(y) => FiberResult::Yield(y),
            corosensei::CoroutineResult::Return(r) => FiberResult::Return(r),
        }
    }

    /// True once it has been resumed at least once.
    pub fn started(&self) -> bool {
        self.co.as_ref().is_some_and(|c| c.started())
    }

    /// True once the function has returned (or panicked).
    pub fn done(&self) -> bool {
        self.co.as_ref().map_or(true, |c| c.done())
    }

    /// Gives the stack back once the fiber has finished.
    ///
    /// # Panics
    /// If the fiber is suspended: drop it instead, which unwinds its stack.
    pub fn into_stack(mut self) -> Stack {
        self.co.take().expect("fiber was taken apart").into_stack()
    }
}

impl<Y> Fiber<Y> {
    /// Runs the fiber until it suspends (`Some(value)`) or returns (`None`).
    #[inline]
    pub fn resume(&mut self) -> Option<Y> {
        match self.resume_with(()) {
            FiberResult::Yield(y) => Some(y),
            FiberResult::Return(()) => None,
        }
    }
}

impl<Y, I, R> Fiber<Y, I, R> {
    /// Ends a suspended fiber by unwinding its stack from the point where it
    /// suspended, so every destructor of its frames runs (corosensei's forced
    /// unwind); an unstarted fiber just drops its function. Afterwards the fiber is
    /// [`done`](Fiber::done). Dropping a fiber does this.
    ///
    /// # Panics
    /// If the fiber catches the unwind and panics with something else, that panic
    /// continues here.
    pub fn unwind(&mut self) {
        if let Some(co) = &mut self.co {
            if !co.done() {
                // The unwind runs on the fiber's stack (its suspend point restores
                // its info); afterwards this stack's info must be current again.
                let _back = Restore(overflow::saved());
                co.force_unwind();
            }
        }
    }
}

impl<Y, I, R> Drop for Fiber<Y, I, R> {
    fn drop(&mut self) {
        self.unwind();
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
        f: impl FnOnce(&Suspender<Y>) + 'static,
    ) -> FiberBox<Y> {
        const { assert!(std::mem::align_of::<Fiber<Y>>() <= 64) };
        let slot = stack.reserve_top(std::mem::size_of::<Fiber<Y>>()) as *mut Fiber<Y>;
        let fiber = Fiber::new(stack, name, id, move |s, ()| f(s));
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
        // SAFETY: we own the fiber; moving it off its stack before dropping it (which
        // unwinds it if suspended) means its stack, which it owns, is never freed
        // while the value still lives there.
        drop(unsafe { self.ptr.as_ptr().read() });
    }
}
