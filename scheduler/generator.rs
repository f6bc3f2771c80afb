//! Generators: Python's `yield`/`send` on corun's stackful fibers.
//!
//! A [`Generator`] runs a closure on a stack of its own, on the caller's thread. The
//! closure gets a [`Co`] handle; [`Co::yield_`] hands a value out to whoever called
//! [`Generator::send`] (or [`Generator::resume`], or `next()`) and returns what the
//! next `send` passes in. Because the generator has a whole stack, `yield_` may be
//! called from any depth of ordinary function calls, not only from the closure's
//! body. No runtime is involved: only the coroutine layer (`coroutine::Fiber`).
//!
//! | Python                          | corun                                      |
//! |---------------------------------|--------------------------------------------|
//! | `def g(): ...`, `gen = g()`     | `let mut gen = Generator::new(\|co\| ...)` |
//! | `x = yield y`                   | `let x = co.yield_(y);`                    |
//! | `next(gen)` / `gen.send(None)`  | `gen.resume()` (sends `I::default()`)      |
//! | `gen.send(v)`                   | `gen.send(v)`                              |
//! | `StopIteration(value)`          | `None`, then `gen.return_value()`          |
//! | `return value` in the body      | the closure's return value                 |
//! | `yield from sub`                | `co.yield_from(sub)`                       |
//! | `gen.close()` / garbage         | `drop(gen)`: the body's stack unwinds      |
//! | exception raised in the body    | the panic continues in `send`'s caller     |

use crate::coroutine::stack::Stack;
use crate::coroutine::{overflow, Fiber, FiberResult, Suspender};
use crate::sched::local::{self, Slot};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::iter::FusedIterator;
use std::panic::{self, AssertUnwindSafe};

/// Stack size of [`Generator::new`]: the same as a coroutine's default. It is address
/// space; only the pages the generator touches cost memory.
pub const GENERATOR_STACK_SIZE: usize = crate::DEFAULT_STACK_SIZE;

/// Stacks of [`GENERATOR_STACK_SIZE`] a thread keeps for its next generators.
const POOL_MAX: usize = 8;

thread_local! {
    /// Finished generators' stacks, reused by the next ones made on this thread.
    static POOL: RefCell<Vec<Stack>> = const { RefCell::new(Vec::new()) };
    /// Whether this thread is ready to report a generator's stack overflow.
    static OVERFLOW_READY: Cell<bool> = const { Cell::new(false) };
}

/// Readies the overflow report for fibers on this thread: the signal handler (once
/// per process) and a signal stack (once per thread).
fn prepare_thread() {
    if OVERFLOW_READY.with(|r| r.replace(true)) {
        return;
    }
    overflow::install();
    if let Err(e) = overflow::ensure_altstack() {
        eprintln!(
            "corun: no signal stack on this thread, so a generator's stack overflow may not be reported: {e}"
        );
    }
}

/// A stack of the default size, from this thread's pool if it has one.
fn pooled_stack() -> io::Result<Stack> {
    match POOL.try_with(|p| p.borrow_mut().pop()) {
        Ok(Some(s)) => Ok(s),
        _ => Stack::new(GENERATOR_STACK_SIZE),
    }
}

/// Keeps a finished generator's default-size stack for the next generator.
fn recycle(stack: Stack) {
    // During thread exit the pool may be gone: the stack is then simply unmapped.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(stack);
        }
    });
}

/// Where a generator is in its life; see [`Generator::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneratorState {
    /// Made, never resumed: its closure has not started.
    Created,
    /// Stopped in [`Co::yield_`], waiting for the next `send`/`resume`.
    Suspended,
    /// Its closure returned; the value is in [`Generator::return_value`].
    Returned,
    /// Its closure panicked (the panic went to the caller of that `send`).
    Panicked,
}

/// A generator's handle on itself, given to its closure: [`Co::yield_`] suspends
/// the generator.
///
/// It exists only as `&Co` lent to the running closure and cannot leave the thread
/// (it is neither `Send` nor `Sync`), so it can only suspend its own generator.
#[repr(transparent)]
pub struct Co<Y, I = ()> {
    /// The fiber's suspender. Input is `Option<I>`: the first resume, which starts
    /// the closure, carries no value (nothing waits for one yet).
    s: Suspender<Y, Option<I>>,
}

impl<Y, I> Co<Y, I> {
    fn from_suspender(s: &Suspender<Y, Option<I>>) -> &Co<Y, I> {
        // SAFETY: `Co` is `repr(transparent)` over `Suspender<Y, Option<I>>`: same
        // layout; the reference keeps its lifetime.
        unsafe { &*(s as *const Suspender<Y, Option<I>> as *const Co<Y, I>) }
    }

    /// Suspends the generator, handing `value` to the caller of `send`/`resume`/
    /// `next`; returns the value passed to the next `send` (Python's
    /// `x = yield value`).
    ///
    /// If the generator is dropped while suspended here, `yield_` does not return:
    /// the generator's stack unwinds from here, running every destructor.
    ///
    /// ```
    /// use corun::Generator;
    /// // A running average, as Python's classic coroutine example.
    /// let mut avg = Generator::new(|co| {
    ///     let (mut sum, mut n) = (0.0, 0.0);
    ///     let mut x: f64 = co.yield_(f64::NAN);
    ///     loop {
    ///         sum += x;
    ///         n += 1.0;
    ///         x = co.yield_(sum / n);
    ///     }
    /// });
    /// avg.resume(); // runs to the first yield_
    /// assert_eq!(avg.send(10.0), Some(10.0));
    /// assert_eq!(avg.send(20.0), Some(15.0));
    /// assert_eq!(avg.send(0.0), Some(10.0));
    /// ```
    pub fn yield_(&self, value: Y) -> I {
        self.s
            .suspend(value)
            .expect("a started generator is always resumed with a value")
    }

    /// Runs the unstarted generator `sub` in place of this one until it returns
    /// (Python's `yield from`): each value `sub` yields is yielded from here, and
    /// each value this generator is sent goes on to `sub`. Returns `sub`'s return
    /// value. A panic in `sub` continues here.
    ///
    /// # Panics
    /// If `sub` was already started: there would be no value to resume it with.
    ///
    /// ```
    /// use corun::Generator;
    /// let mut outer = Generator::new(|co| {
    ///     co.yield_("start");
    ///     let inner = Generator::new(|co| {
    ///         co.yield_("inner 1");
    ///         co.yield_("inner 2");
    ///         42
    ///     });
    ///     let r = co.yield_from(inner);
    ///     assert_eq!(r, Some(42));
    ///     co.yield_("end");
    /// });
    /// let got: Vec<_> = outer.by_ref().collect();
    /// assert_eq!(got, ["start", "inner 1", "inner 2", "end"]);
    /// ```
    pub fn yield_from<R>(&self, mut sub: Generator<Y, I, R>) -> Option<R> {
        assert_eq!(
            sub.state,
            GeneratorState::Created,
            "yield_from needs a generator that has not started"
        );
        let mut input = None;
        while let Some(y) = sub.step(input.take()) {
            input = Some(self.yield_(y));
        }
        sub.into_return()
    }
}

impl<Y, I> fmt::Debug for Co<Y, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Co").finish_non_exhaustive()
    }
}

/// A closure on its own stack that hands values out with [`Co::yield_`] and takes
/// values in with [`Generator::send`], as a Python generator does.
///
/// `Y` is what it yields, `I` what `send` passes in (`()` for a plain iterator) and
/// `R` what the closure finally returns.
///
/// - It runs on the thread that calls `send`/`resume`, needs no runtime, and is
///   `!Send`. It may be used inside a coroutine (it then runs on the coroutine's
///   thread; corun calls in its body, such as `park` or a `sleep`, act on that
///   coroutine) and inside another generator.
/// - `send`/`resume` return `Some(yielded)` while the closure yields and `None` once
///   it has returned; the returned value is then in [`Generator::return_value`] /
///   [`Generator::into_return`].
/// - A panic in the closure continues in the caller of that `send`/`resume`, and the
///   generator is finished ([`GeneratorState::Panicked`]).
/// - Dropping a suspended generator unwinds its stack from the `yield_` it is
///   stopped at, so every destructor of its frames runs (Python's `close()`).
/// - The first `send`/`resume` starts the closure; no `yield_` is waiting yet, so
///   the value of that first `send` is dropped (Python requires `send(None)` there).
///
/// ```
/// use corun::{Generator, GeneratorState};
/// // Yields running totals of what it is sent; returns how many values it got.
/// let mut g = Generator::new(|co| {
///     let mut total = 0;
///     let mut count = 0;
///     loop {
///         let x: i32 = co.yield_(total);
///         if x < 0 {
///             return count;
///         }
///         total += x;
///         count += 1;
///     }
/// });
/// assert_eq!(g.state(), GeneratorState::Created);
/// assert_eq!(g.resume(), Some(0)); // starts it
/// assert_eq!(g.send(5), Some(5));
/// assert_eq!(g.send(7), Some(12));
/// assert_eq!(g.send(-1), None); // it returned
/// assert_eq!(g.state(), GeneratorState::Returned);
/// assert_eq!(g.into_return(), Some(2));
/// ```
pub struct Generator<Y, I = (), R = ()> {
    /// `None` once finished (the stack went back to the pool).
    fiber: Option<Fiber<Y, Option<I>, R>>,
    /// Whether `fiber`'s stack is of the pooled size.
    pooled: bool,
    state: GeneratorState,
    ret: Option<R>,
    /// Its own `coroutine_local!` values: it has a stack of its own, so a value its
    /// body borrows lives as long as the generator, not as long as whoever resumed it.
    locals: Slot,
}

impl<Y: 'static, I: 'static, R: 'static> Generator<Y, I, R> {
    /// A generator running `f` on a stack of [`GENERATOR_STACK_SIZE`] bytes (reused
    /// from this thread's earlier generators when it can). Nothing runs until the
    /// first `send`/`resume`/`next`.
    ///
    /// # Panics
    /// If no stack can be mapped (as `std::thread::spawn` panics when it cannot make
    /// a thread).
    ///
    /// ```
    /// let fib = corun::Generator::new(|co| {
    ///     let (mut a, mut b) = (0u64, 1u64);
    ///     loop {
    ///         co.yield_(a);
    ///         (a, b) = (b, a + b);
    ///     }
    /// });
    /// let first: Vec<u64> = fib.take(10).collect();
    /// assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    /// ```
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(&Co<Y, I>) -> R + 'static,
    {
        let stack = pooled_stack().expect("corun: cannot map a generator stack");
        Self::on_stack(stack, true, f)
    }

    /// A generator running `f` on a stack of its own of `bytes` (rounded up to whole
    /// pages), for a body that needs more (deep recursion, big locals) or less than
    /// the default. Overflowing it is reported as with coroutines
    /// (`coroutine generator overflowed its stack of N KiB`) and aborts the process.
    ///
    /// Errors: a size below two pages, or a stack that cannot be mapped.
    ///
    /// ```
    /// let mut g = corun::Generator::with_stack_size(16 * 1024, |co| {
    ///     co.yield_(1);
    ///     co.yield_(2);
    /// })
    /// .unwrap();
    /// assert_eq!(g.next(), Some(1));
    /// assert_eq!(g.next(), Some(2));
    /// assert_eq!(g.next(), None);
    /// assert!(corun::Generator::<(), (), ()>::with_stack_size(0, |_| ()).is_err());
    /// ```
    pub fn with_stack_size<F>(bytes: usize, f: F) -> io::Result<Self>
    where
        F: FnOnce(&Co<Y, I>) -> R + 'static,
    {
        Ok(Self::on_stack(Stack::new(bytes)?, false, f))
    }

    fn on_stack<F>(stack: Stack, pooled: bool, f: F) -> Self
    where
        F: FnOnce(&Co<Y, I>) -> R + 'static,
    {
        prepare_thread();
        let fiber = Fiber::new(stack, Some("generator"), 0, move |s, first: Option<I>| {
            // The starting resume carries no value; see `step`.
            drop(first);
            f(Co::from_suspender(s))
        });
        Generator {
            fiber: Some(fiber),
            pooled,
            state: GeneratorState::Created,
            ret: None,
            locals: Slot::new(),
        }
    }
}

impl<Y, I, R> Generator<Y, I, R> {
    /// Resumes the generator, passing `input` to the `yield_` it is stopped at;
    /// returns the next value it yields, or `None` once its closure has returned
    /// (and at every call after that). On an unstarted generator this starts the
    /// closure and `input` is dropped: nothing waits for it yet.
    ///
    /// # Panics
    /// If the closure panics: the panic continues here.
    ///
    /// ```
    /// let mut echo = corun::Generator::new(|co| {
    ///     let mut got: String = co.yield_(String::new());
    ///     while !got.is_empty() {
    ///         got = co.yield_(got.to_uppercase());
    ///     }
    ///     "bye"
    /// });
    /// echo.send(String::new()); // starts it
    /// assert_eq!(echo.send("hi".into()).as_deref(), Some("HI"));
    /// assert_eq!(echo.send(String::new()), None);
    /// assert_eq!(echo.return_value(), Some(&"bye"));
    /// ```
    pub fn send(&mut self, input: I) -> Option<Y> {
        match self.state {
            GeneratorState::Created => {
                drop(input);
                self.step(None)
            }
            _ => self.step(Some(input)),
        }
    }

    /// Resumes the generator as Python's `next(gen)` does: starts it, or sends
    /// `I::default()` (`()` for a plain iterator, `None` for an `Option` input).
    /// See [`Generator::send`].
    ///
    /// ```
    /// let mut g = corun::Generator::new(|co| {
    ///     let got: Option<&str> = co.yield_(1);
    ///     assert_eq!(got, None);
    ///     let got = co.yield_(2);
    ///     assert_eq!(got, Some("two"));
    /// });
    /// assert_eq!(g.resume(), Some(1));
    /// assert_eq!(g.resume(), Some(2));
    /// assert_eq!(g.send(Some("two")), None);
    /// ```
    pub fn resume(&mut self) -> Option<Y>
    where
        I: Default,
    {
        self.send(I::default())
    }

    /// Runs the fiber with `input` (`None` only to start it).
    fn step(&mut self, input: Option<I>) -> Option<Y> {
        let fiber = self.fiber.as_mut()?;
        // Its locals are the active ones while its body runs (back on yield, return
        // or unwind).
        let locals = local::enter(&self.locals);
        // Catch to record the outcome, then let the panic go on to our caller. The
        // hook already ran where the panic started; `resume_unwind` does not rerun it.
        let r = panic::catch_unwind(AssertUnwindSafe(|| fiber.resume_with(input)));
        drop(locals);
        match r {
            Ok(FiberResult::Yield(y)) => {
                self.state = GeneratorState::Suspended;
                Some(y)
            }
            Ok(FiberResult::Return(r)) => {
                self.ret = Some(r);
                self.finish(GeneratorState::Returned);
                None
            }
            Err(payload) => {
                self.finish(GeneratorState::Panicked);
                panic::resume_unwind(payload)
            }
        }
    }

    /// Marks the generator ended and gives its stack back.
    fn finish(&mut self, state: GeneratorState) {
        self.state = state;
        if let Some(f) = self.fiber.take() {
            let stack = f.into_stack();
            if self.pooled {
                recycle(stack);
            }
        }
    }

    /// Where the generator is in its life.
    ///
    /// ```
    /// use corun::{Generator, GeneratorState};
    /// let mut g = Generator::new(|co| co.yield_("once"));
    /// assert_eq!(g.state(), GeneratorState::Created);
    /// g.next();
    /// assert_eq!(g.state(), GeneratorState::Suspended);
    /// g.next();
    /// assert_eq!(g.state(), GeneratorState::Returned);
    /// ```
    pub fn state(&self) -> GeneratorState {
        self.state
    }

    /// True once the closure has returned or panicked: `send` now gives `None`.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            GeneratorState::Returned | GeneratorState::Panicked
        )
    }

    /// What the closure returned, once it has (Python's `StopIteration.value`).
    ///
    /// ```
    /// let mut g = corun::Generator::new(|co| {
    ///     co.yield_(1);
    ///     "done"
    /// });
    /// assert_eq!(g.return_value(), None);
    /// while g.next().is_some() {}
    /// assert_eq!(g.return_value(), Some(&"done"));
    /// ```
    pub fn return_value(&self) -> Option<&R> {
        self.ret.as_ref()
    }

    /// Takes the closure's return value: `None` if it has not returned (still
    /// running, or it panicked). Dropping an unfinished generator this way unwinds
    /// its stack, as dropping it does.
    pub fn into_return(mut self) -> Option<R> {
        self.ret.take()
    }
}

impl<Y, I, R> Drop for Generator<Y, I, R> {
    /// Unwinds a suspended generator's stack (running its destructors) and keeps
    /// the stack for the next generator of this thread.
    fn drop(&mut self) {
        let locals = local::enter(&self.locals);
        if let Some(mut f) = self.fiber.take() {
            f.unwind();
            let stack = f.into_stack();
            if self.pooled {
                recycle(stack);
            }
        }
        // No frame of its stack is left to borrow them.
        locals.teardown();
    }
}

impl<Y, R> Iterator for Generator<Y, (), R> {
    type Item = Y;

    /// Resumes the generator; `None` once its closure has returned.
    fn next(&mut self) -> Option<Y> {
        self.step(if self.state == GeneratorState::Created {
            None
        } else {
            Some(())
        })
    }
}

impl<Y, R> FusedIterator for Generator<Y, (), R> {}

impl<Y, I, R> fmt::Debug for Generator<Y, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
