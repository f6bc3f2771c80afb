//! G: the shared record of one coroutine.
//!
//! A coroutine is one allocation, `Arc<Task<Closure<F, T>>>`, seen by the scheduler and
//! by its `JoinHandle<T>` as [`G`] (`Arc<Task<dyn Body>>`); the handle's `T` recovers
//! the result's type.
//! The [`Header`] holds what the scheduler needs: the park state, the join state, the
//! worker it is bound to once started, and its [`Fiber`] (stack and saved context).
//!
//! Ownership of the fiber: it is created by the worker that first runs the coroutine,
//! and only that worker ever touches it afterwards (a `migratable` coroutine moves it
//! with the queue entry, under its `unsafe` contract). The queues hand the `G` over
//! with release/acquire, so the one thread that holds it may use the fiber.

use super::park::Waiter;
use super::shared::Shared;
use crate::coroutine::{Fiber, Suspender};
use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;

/// Why a coroutine suspended itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Run me again later, after the others queued here.
    Yield,
    /// Do not run me until `unpark`.
    Park,
}

/// The scheduler's handle to a coroutine.
pub(crate) type G = Arc<Task<dyn Body>>;

/// The one allocation of a coroutine: header, then closure and result.
pub(crate) struct Task<B: ?Sized> {
    pub(crate) header: Header,
    pub(crate) body: B,
}

/// Park states (see `park.rs` for the protocol).
pub(crate) const RUNNING: u8 = 0;
pub(crate) const NOTIFIED: u8 = 1;
pub(crate) const PARKED: u8 = 2;
pub(crate) const QUEUED: u8 = 3;

const JOIN_IDLE: u8 = 0;
const JOIN_WAITING: u8 = 1;
const JOIN_DONE: u8 = 2;

/// `home` before the coroutine first runs.
pub(crate) const UNSTARTED: u32 = u32::MAX;

/// What the scheduler knows of a coroutine.
pub(crate) struct Header {
    pub(crate) state: AtomicU8,
    join: AtomicU8,
    pub(crate) migratable: bool,
    /// Set by `JoinHandle::cancel` or runtime shutdown, never cleared: every later
    /// cancellation point unwinds the coroutine; an unstarted one is never run.
    pub(crate) cancel: AtomicBool,
    /// Worker index the coroutine is bound to; `UNSTARTED` before its first run.
    pub(crate) home: AtomicU32,
    /// Index in the home worker's registry of started coroutines.
    pub(crate) slot: AtomicU32,
    pub(crate) id: u64,
    /// The runtime; valid while the coroutine is alive (the runtime outlives them all).
    pub(crate) rt: *const Shared,
    pub(crate) name: Option<Box<str>>,
    /// Stack size asked for at spawn, 0 for the runtime's default.
    pub(crate) stack_size: usize,
    /// Sequence number of the timer a parked coroutine waits on; 0 when none.
    pub(crate) timer_seq: AtomicU64,
    fiber: UnsafeCell<Option<Fiber<Request>>>,
    suspender: UnsafeCell<*const Suspender<Request>>,
    joiner: UnsafeCell<Option<Waiter>>,
    pub(crate) locals: UnsafeCell<Option<Box<super::local::LocalMap>>>,
}

// SAFETY: the non-Sync fields are each used by one thread at a time under a stated
// protocol: `fiber` and `yielder` by the thread running the coroutine (handed over by
// the queues with release/acquire; started non-migratable coroutines never change
// thread); `joiner` is written by the joiner before it publishes JOIN_WAITING and read
// by the finisher after it observes it; `locals` only by the coroutine itself. `rt`
// points to the runtime's shared state, which outlives every coroutine it runs.
unsafe impl Send for Header {}
// SAFETY: see `Send` above.
unsafe impl Sync for Header {}

impl Header {
    pub(crate) fn new(
        id: u64,
        rt: *const Shared,
        name: Option<Box<str>>,
        stack_size: usize,
        migratable: bool,
    ) -> Header {
        Header {
            state: AtomicU8::new(RUNNING),
            join: AtomicU8::new(JOIN_IDLE),
            migratable,
            cancel: AtomicBool::new(false),
            home: AtomicU32::new(UNSTARTED),
            slot: AtomicU32::new(0),
            id,
            rt,
            name,
            stack_size,
            timer_seq: AtomicU64::new(0),
            fiber: UnsafeCell::new(None),
            suspender: UnsafeCell::new(std::ptr::null()),
            joiner: UnsafeCell::new(None),
            locals: UnsafeCell::new(None),
        }
    }

    pub(crate) fn is_started(&self) -> bool {
        self.home.load(Ordering::Relaxed) != UNSTARTED
    }

    /// Label used in messages: the name, or `#id`.
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("'{n}' (#{})", self.id),
            None => format!("#{}", self.id),
        }
    }

    /// The fiber slot.
    ///
    /// # Safety
    /// Only the thread that currently owns the coroutine (see the module docs) may call
    /// this, and not while the fiber is running on another frame of this thread.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn fiber(&self) -> &mut Option<Fiber<Request>> {
        // SAFETY: the caller is the owning thread, so no other reference exists.
        unsafe { &mut *self.fiber.get() }
    }

    /// Suspends the running coroutine. Must be called on its own stack.
    ///
    /// # Safety
    /// The caller is this coroutine, running (so `suspender` was set by its entry and
    /// points into its live stack frame).
    pub(crate) unsafe fn suspend(&self, req: Request) {
        // SAFETY: per the contract, the pointer was set at entry and its frame lives
        // until the coroutine returns.
        unsafe { (**self.suspender.get()).suspend(req) }
    }

    /// Records the suspender; called first thing on the coroutine's own stack.
    fn set_suspender(&self, s: &Suspender<Request>) {
        // SAFETY: only the coroutine itself touches `suspender`, on one thread at a
        // time; the suspender lives in its entry frame, which outlives every use
        // (`suspend` is only called by the running coroutine, inside that frame).
        unsafe { *self.suspender.get() = s }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.join.load(Ordering::Acquire) == JOIN_DONE
    }

    /// Marks the coroutine finished and wakes its joiner, if any.
    pub(crate) fn finish(&self) {
        if self.join.swap(JOIN_DONE, Ordering::AcqRel) == JOIN_WAITING {
            // SAFETY: JOIN_WAITING was published after the joiner wrote `joiner`, and the
            // joiner does not touch it again; we are its only reader.
            if let Some(w) = unsafe { (*self.joiner.get()).take() } {
                w.unpark();
            }
        }
    }

    /// Registers `w` to be woken at finish. Returns false if already finished.
    ///
    /// # Safety
    /// Called at most once per coroutine, by its single joiner.
    pub(crate) unsafe fn set_joiner(&self, w: Waiter) -> bool {
        // SAFETY: the joiner is unique and the finisher reads `joiner` only after it
        // sees JOIN_WAITING, which is published below with release.
        unsafe { *self.joiner.get() = Some(w) };
        self.join
            .compare_exchange(JOIN_IDLE, JOIN_WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The type-erased closure, as the scheduler sees it.
pub(crate) trait Body: Send + Sync {
    /// Runs the closure once, catching its panic into the output.
    fn run(&self);
    /// Drops the closure unrun and records `payload` as the outcome.
    fn abandon(&self, payload: Box<dyn Any + Send>);
    /// Moves the result out into `dst`.
    ///
    /// # Safety
    /// `dst` points to an `Option<std::thread::Result<T>>` with this closure's `T`
    /// (the `JoinHandle<T>` made with it guarantees that), and the coroutine finished.
    unsafe fn take_output(&self, dst: *mut ());
}

/// A coroutine's closure and, once it returned, its result.
pub(crate) struct Closure<F, T> {
    f: UnsafeCell<Option<F>>,
    out: UnsafeCell<Option<thread::Result<T>>>,
}

impl<F, T> Closure<F, T> {
    pub(crate) fn new(f: F) -> Self {
        Closure {
            f: UnsafeCell::new(Some(f)),
            out: UnsafeCell::new(None),
        }
    }
}

// SAFETY: `f` is taken once by the thread that runs the coroutine (it owns the G at
// that point); `out` is written once before JOIN_DONE is published with release and
// read by the joiner after it observes JOIN_DONE with acquire. F and T are Send.
unsafe impl<F: Send, T: Send> Sync for Closure<F, T> {}

impl<F: FnOnce() -> T + Send, T: Send> Body for Closure<F, T> {
    fn run(&self) {
        // SAFETY: see the `Sync` impl: the running thread owns `f`.
        let f = unsafe { (*self.f.get()).take() };
        let Some(f) = f else { return };
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: written once, before `finish` publishes JOIN_DONE.
        unsafe { *self.out.get() = Some(r) };
    }

    fn abandon(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: an unstarted coroutine is owned by the thread abandoning it.
        let f = unsafe { (*self.f.get()).take() };
        drop(f);
        // SAFETY: as in `run`.
        unsafe { *self.out.get() = Some(Err(payload)) };
    }

    unsafe fn take_output(&self, dst: *mut ()) {
        // SAFETY: per the contract `dst` has our `T`; the joiner observed JOIN_DONE
        // (acquire) so the write in `run` is visible and nobody else reads `out`.
        unsafe { *(dst as *mut Option<thread::Result<T>>) = (*self.out.get()).take() }
    }
}

/// Builds the fiber of `g` on `stack`: the coroutine's entry point.
pub(crate) fn make_fiber(g: &G, stack: crate::coroutine::stack::Stack) -> Fiber<Request> {
    let g2 = g.clone();
    let h = &g.header;
    Fiber::new(stack, h.name.as_deref(), h.id, move |s, ()| {
        g2.header.set_suspender(s);
        g2.body.run();
        // SAFETY: only this coroutine touches its locals; they drop on its own stack.
        drop(unsafe { (*g2.header.locals.get()).take() });
        g2.header.finish();
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_size() {
        let n = std::mem::size_of::<super::Task<super::Closure<fn() -> u64, u64>>>();
        eprintln!(
            "task size {n}, header {}",
            std::mem::size_of::<super::Header>()
        );
        assert!(n <= 512);
    }
}
