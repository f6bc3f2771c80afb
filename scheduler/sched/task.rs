//! G: the shared record of one coroutine.
//!
//! A coroutine is one allocation, a `Cell<F, T>`: the [`Task`] (header, reference
//! count, vtable) followed by the closure and its result. The scheduler and the
//! `JoinHandle<T>` hold it through [`G`], a thin counted pointer (8 bytes in a queue);
//! the vtable reaches the typed parts, and the handle's `T` recovers the result's type.
//! The [`Header`] holds what the scheduler needs: the park state, the join state, the
//! worker it is bound to once started, and its [`Fiber`] (stack and saved context).
//!
//! Ownership of the fiber: it is created by the worker that first runs the coroutine,
//! and only that worker ever touches it afterwards (a `migratable` coroutine moves it
//! with the queue entry, under its `unsafe` contract). The queues hand the `G` over
//! with release/acquire, so the one thread that holds it may use the fiber.

use super::park::Waiter;
use super::shared::Shared;
use crate::coroutine::{FiberBox, Suspender};
use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::thread;

/// Why a coroutine suspended itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Run me again later, after the others queued here.
    Yield,
    /// Do not run me until `unpark`.
    Park,
}

/// What every coroutine allocation starts with.
#[repr(C)]
pub(crate) struct Task {
    pub(crate) header: Header,
    refs: AtomicUsize,
    vtable: &'static Vtable,
}

/// The typed operations of one `Cell<F, T>`.
///
/// # Safety
/// Each is called only with the task of a `Cell<F, T>` made with this very vtable
/// (`G::new` pairs them), and under the ownership rules stated on `Cell`.
struct Vtable {
    run: unsafe fn(&Task),
    abandon: unsafe fn(&Task, Box<dyn Any + Send>),
    take_output: unsafe fn(&Task, *mut ()),
    destroy: unsafe fn(NonNull<Task>),
}

/// A counted reference to a coroutine (an `Arc` without the weak count, and thin).
pub(crate) struct G(NonNull<Task>);

// SAFETY: a `G` only gives shared access to the `Task`, whose fields are Sync by the
// argument on `Header`; the closure and result inside are `Send` (checked at `G::new`),
// and the count is atomic.
unsafe impl Send for G {}
// SAFETY: see `Send`.
unsafe impl Sync for G {}

impl std::ops::Deref for G {
    type Target = Task;
    #[inline]
    fn deref(&self) -> &Task {
        // SAFETY: the count we hold keeps the allocation alive.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for G {
    #[inline]
    fn clone(&self) -> G {
        // Relaxed, as `Arc`: a new reference is made from an existing one.
        self.refs.fetch_add(1, Ordering::Relaxed);
        G(self.0)
    }
}

impl Drop for G {
    #[inline]
    fn drop(&mut self) {
        if self.refs.fetch_sub(1, Ordering::Release) == 1 {
            // Acquire: every use through other references happens before the free.
            std::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: this was the last reference.
            unsafe { (self.vtable.destroy)(self.0) }
        }
    }
}

impl G {
    /// Allocates the coroutine of closure `f`.
    ///
    /// # Safety
    /// `F` and `T` may borrow: the caller guarantees the closure and its result are
    /// gone before what they borrow (true of `'static` types; `scope.rs` ensures it for
    /// scoped coroutines).
    pub(crate) unsafe fn new<F, T>(header: Header, f: F) -> G
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let cell: Box<Cell<F, T>> = Box::new(Cell {
            task: Task {
                header,
                refs: AtomicUsize::new(1),
                vtable: Cell::<F, T>::VTABLE,
            },
            f: UnsafeCell::new(Some(f)),
            out: UnsafeCell::new(None),
        });
        G(NonNull::from(Box::leak(cell)).cast())
    }

    /// The task's address, for the current-coroutine pointer.
    pub(super) fn as_ptr(&self) -> NonNull<Task> {
        self.0
    }

    /// Takes one more reference to the task at `p`.
    ///
    /// # Safety
    /// `p` points to a live task (some reference keeps it alive during the call).
    pub(super) unsafe fn from_ptr(p: NonNull<Task>) -> G {
        // SAFETY: the task is alive per the contract.
        unsafe { p.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        G(p)
    }
}

impl Task {
    /// Runs the closure once, catching its panic into the output. Called on the
    /// coroutine's own stack.
    pub(crate) fn run(&self) {
        // SAFETY: `vtable` was made for this cell's types.
        unsafe { (self.vtable.run)(self) }
    }

    /// Ends a coroutine that will not run (again): drops its closure if it never
    /// ran, records `payload` as its outcome and wakes its joiner.
    pub(crate) fn abandon(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: as in `run`.
        unsafe { (self.vtable.abandon)(self, payload) };
        self.header.finish();
    }

    /// Moves the result out into `dst`.
    ///
    /// # Safety
    /// `dst` points to an `Option<std::thread::Result<T>>` with this closure's `T`, and
    /// the coroutine finished.
    pub(crate) unsafe fn take_output(&self, dst: *mut ()) {
        // SAFETY: forwarded contract.
        unsafe { (self.vtable.take_output)(self, dst) }
    }
}

/// Park states (see `park.rs` for the protocol).
pub(super) const RUNNING: u8 = 0;
pub(super) const NOTIFIED: u8 = 1;
pub(crate) const PARKED: u8 = 2;
pub(crate) const QUEUED: u8 = 3;

const JOIN_IDLE: u8 = 0;
const JOIN_WAITING: u8 = 1;
const JOIN_DONE: u8 = 2;

/// `home` before the coroutine first runs.
pub(super) const UNSTARTED: u32 = u32::MAX;

/// Settings few coroutines have, kept out of line.
struct Extras {
    name: Option<Box<str>>,
    stack_size: usize,
}

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
    pub(super) rt: *const Shared,
    /// Name and stack size, for the few coroutines built with them.
    extras: Option<Box<Extras>>,
    /// Sequence number of the timer a parked coroutine waits on; 0 when none.
    pub(super) timer_seq: AtomicU32,
    /// What the coroutine last parked on, since when and until when (`wait.rs`):
    /// written by the coroutine as it parks, read by `dump` from any thread.
    pub(crate) wait: AtomicU64,
    fiber: UnsafeCell<Option<FiberBox<Request>>>,
    suspender: UnsafeCell<*const Suspender<Request>>,
    /// The joiner, a [`Waiter`] packed in one word (see [`Joiner`]).
    joiner: UnsafeCell<Joiner>,
    /// Its `coroutine_local!` values (see `local.rs`).
    pub(super) locals: super::local::Slot,
}

/// A [`Waiter`] in one word, so that the header keeps room for the wait word: 0 for
/// none, a coroutine's task pointer (a counted `G`; tasks are 8-byte aligned, so its
/// low bit is 0), or a thread's counted `ThreadWaiter` with the low bit set.
pub(super) struct Joiner(usize);

const JOINER_THREAD: usize = 1;

impl Joiner {
    const NONE: Joiner = Joiner(0);

    fn new(w: Waiter) -> Joiner {
        const { assert!(std::mem::align_of::<Task>() >= 2) };
        match w {
            Waiter::Coroutine(g) => Joiner(std::mem::ManuallyDrop::new(g).0.as_ptr() as usize),
            Waiter::Thread(t) => {
                const { assert!(std::mem::align_of::<super::park::ThreadWaiter>() >= 2) };
                Joiner(std::sync::Arc::into_raw(t) as usize | JOINER_THREAD)
            }
        }
    }

    fn take(&mut self) -> Option<Waiter> {
        let p = std::mem::replace(&mut self.0, 0);
        if p == 0 {
            None
        } else if p & JOINER_THREAD != 0 {
            // SAFETY: made by `Arc::into_raw` in `new` and not taken since (zeroed
            // above), so we own that count.
            Some(Waiter::Thread(unsafe {
                std::sync::Arc::from_raw((p & !JOINER_THREAD) as *const super::park::ThreadWaiter)
            }))
        } else {
            // SAFETY: the pointer of a `G` whose count `new` kept (ManuallyDrop) and
            // that is taken back once (zeroed above).
            Some(Waiter::Coroutine(G(unsafe {
                NonNull::new_unchecked(p as *mut Task)
            })))
        }
    }
}

impl Drop for Joiner {
    fn drop(&mut self) {
        drop(self.take());
    }
}

// SAFETY: the non-Sync fields are each used by one thread at a time under a stated
// protocol: `fiber` and `suspender` by the thread running the coroutine (handed over
// by the queues with release/acquire; started non-migratable coroutines never change
// thread; after the runtime's threads are joined, by the thread that dropped it);
// `joiner` is written by the joiner before it publishes JOIN_WAITING and read by the
// finisher after it observes it. `locals` is touched only by code running for the
// coroutine on its own thread (its stack, or a generator's it runs): its map is freed
// by the coroutine itself (`Cell::run`) and never made again after that, and a map
// left over is leaked, never dropped by the thread that frees the task. `rt` is
// dereferenced only while the coroutine is unfinished, and the runtime's shared state
// is freed only once all its coroutines are finished, else leaked (`Runtime::drop`).
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
        let extras =
            (name.is_some() || stack_size != 0).then(|| Box::new(Extras { name, stack_size }));
        Header {
            state: AtomicU8::new(RUNNING),
            join: AtomicU8::new(JOIN_IDLE),
            migratable,
            cancel: AtomicBool::new(false),
            home: AtomicU32::new(UNSTARTED),
            slot: AtomicU32::new(0),
            id,
            rt,
            extras,
            timer_seq: AtomicU32::new(0),
            wait: AtomicU64::new(0),
            fiber: UnsafeCell::new(None),
            suspender: UnsafeCell::new(std::ptr::null()),
            joiner: UnsafeCell::new(Joiner::NONE),
            locals: super::local::Slot::new(),
        }
    }

    /// The name given at spawn.
    pub(crate) fn name(&self) -> Option<&str> {
        self.extras.as_ref().and_then(|e| e.name.as_deref())
    }

    /// The stack size asked for at spawn, 0 for the runtime's default.
    pub(super) fn stack_size(&self) -> usize {
        self.extras.as_ref().map_or(0, |e| e.stack_size)
    }

    pub(super) fn is_started(&self) -> bool {
        self.home.load(Ordering::Relaxed) != UNSTARTED
    }

    /// Label used in messages: the name, or `#id`.
    pub(crate) fn label(&self) -> String {
        match self.name() {
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
    pub(crate) unsafe fn fiber(&self) -> &mut Option<FiberBox<Request>> {
        // SAFETY: the caller is the owning thread, so no other reference exists.
        unsafe { &mut *self.fiber.get() }
    }

    /// Suspends the running coroutine. Must be called on its own stack.
    ///
    /// # Safety
    /// The caller is this coroutine, running (so `suspender` was set by its entry and
    /// points into its live stack frame).
    pub(super) unsafe fn suspend(&self, req: Request) {
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
        unsafe { *self.joiner.get() = Joiner::new(w) };
        let ok = self
            .join
            .compare_exchange(JOIN_IDLE, JOIN_WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !ok {
            // Finished already: the finisher saw no JOIN_WAITING and never reads the
            // joiner, so it is still ours to drop.
            // SAFETY: as above, nobody else touches it.
            drop(unsafe { (*self.joiner.get()).take() });
        }
        ok
    }
}

/// A coroutine's allocation: the task, then its closure and, once it returned, its
/// result.
#[repr(C)]
struct Cell<F, T> {
    task: Task,
    f: UnsafeCell<Option<F>>,
    out: UnsafeCell<Option<thread::Result<T>>>,
}

// The cell is reached only through `&Task` pointing at its first field (`repr(C)`), so
// each function casts back to the `Cell<F, T>` its vtable was made for. `f` is taken
// once by the thread that runs (or abandons) the coroutine, which owns it then; `out`
// is written once before JOIN_DONE is published (release) and read by the joiner after
// it observes it (acquire).
impl<F: FnOnce() -> T + Send, T: Send> Cell<F, T> {
    const VTABLE: &'static Vtable = &Vtable {
        run: Self::run,
        abandon: Self::abandon,
        take_output: Self::take_output,
        destroy: Self::destroy,
    };

    /// # Safety
    /// `t` is the `task` field of a `Cell<F, T>`.
    unsafe fn of(t: &Task) -> &Self {
        // SAFETY: `task` is the first field of a `repr(C)` Cell<F, T>.
        unsafe { &*(t as *const Task as *const Self) }
    }

    /// # Safety
    /// See [`Vtable`]: the task belongs to a `Cell<F, T>` made with this vtable.
    unsafe fn run(t: &Task) {
        // SAFETY: per the vtable, `t` is in a Cell<F, T>; the running thread owns `f`.
        let c = unsafe { Self::of(t) };
        // SAFETY: see above.
        let Some(f) = (unsafe { (*c.f.get()).take() }) else {
            return;
        };
        let mut r = panic::catch_unwind(AssertUnwindSafe(f));
        // The coroutine's locals go on its own stack, after its closure (and every
        // frame that could borrow them) ended. A panic there is the coroutine's.
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| t.header.locals.teardown())) {
            let result = std::mem::replace(&mut r, Err(p));
            drop_guarded(
                move || drop(result),
                || format!("the result of coroutine {}", t.header.label()),
            );
        }
        // SAFETY: written once, before `finish` publishes JOIN_DONE.
        unsafe { *c.out.get() = Some(r) };
    }

    /// # Safety
    /// See [`Vtable`]: the task belongs to a `Cell<F, T>` made with this vtable.
    unsafe fn abandon(t: &Task, payload: Box<dyn Any + Send>) {
        // SAFETY: as in `run`; an unstarted coroutine is owned by the abandoning thread.
        let c = unsafe { Self::of(t) };
        // SAFETY: see above.
        let f = unsafe { (*c.f.get()).take() };
        // The closure's captures are user values: a panic in their destructors is the
        // coroutine's outcome (this may run on a worker's own stack).
        let payload = match panic::catch_unwind(AssertUnwindSafe(|| drop(f))) {
            Ok(()) => payload,
            Err(p) => p,
        };
        // SAFETY: as in `run`.
        unsafe { *c.out.get() = Some(Err(payload)) };
    }

    /// # Safety
    /// See [`Vtable`]: the task belongs to a `Cell<F, T>` made with this vtable.
    unsafe fn take_output(t: &Task, dst: *mut ()) {
        // SAFETY: per the contract `dst` has our `T`; the joiner observed JOIN_DONE
        // (acquire), so the write in `run` is visible and nobody else reads `out`.
        unsafe {
            let c = Self::of(t);
            *(dst as *mut Option<thread::Result<T>>) = (*c.out.get()).take();
        }
    }

    /// # Safety
    /// See [`Vtable`]: the task belongs to a `Cell<F, T>` made with this vtable.
    unsafe fn destroy(p: NonNull<Task>) {
        let c = p.as_ptr() as *mut Self;
        // The closure (unrun) and the result (unjoined) are user values, dropped by
        // whatever thread held the last reference, often a worker between two
        // coroutines: a panic in their destructors must not unwind the scheduler.
        // They are dropped in place: a large result is not copied to this stack.
        // SAFETY: the last reference is gone, so this thread alone reaches the cell,
        // made by `G::new` as a Box<Cell<F, T>>; each field is dropped once below (at
        // most one of the two user fields holds a value: `run` and `abandon` take the
        // closure before they store the result).
        let h = unsafe { &(*c).task.header };
        drop_guarded(
            // SAFETY: as above.
            || unsafe {
                std::ptr::drop_in_place((*c).f.get());
                std::ptr::drop_in_place((*c).out.get());
            },
            || format!("the result or closure of coroutine {}", h.label()),
        );
        // SAFETY: as above; the user fields are dropped, so the task is dropped, then
        // the memory is freed without dropping anything again.
        unsafe {
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*c).task));
            drop(Box::from_raw(c as *mut std::mem::ManuallyDrop<Self>));
        }
    }
}

/// Runs `drop`, which drops a user value (`what` names it), so that nothing unwinds
/// out of it: the caller may be the scheduler itself, or a scope that must still
/// count the value gone. If the destructor panics, the process aborts, as std does
/// when a thread's result panics on drop. If corun's own cancellation unwound it (it
/// waited, in a coroutine being cancelled), that is no failure: the value is gone,
/// and that coroutine's next cancellation point raises the cancellation again.
pub(crate) fn drop_guarded(drop: impl FnOnce(), what: impl FnOnce() -> String) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(drop)) {
        if payload.is::<crate::Cancelled>() {
            return;
        }
        // Dropping the payload could panic again.
        std::mem::forget(payload);
        eprintln!(
            "corun: fatal: {} panicked while being dropped; aborting (as std does)",
            what()
        );
        std::process::abort();
    }
}

/// Builds the fiber of `g` on `stack`: the coroutine's entry point.
pub(super) fn make_fiber(g: &G, stack: crate::coroutine::stack::Stack) -> FiberBox<Request> {
    let g2 = g.clone();
    let h = &g.header;
    FiberBox::new(stack, h.name(), h.id, move |s| {
        g2.header.set_suspender(s);
        g2.run();
        g2.header.finish();
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_size() {
        let n = std::mem::size_of::<super::Cell<fn() -> u64, u64>>();
        eprintln!(
            "task size {n}, header {}",
            std::mem::size_of::<super::Header>()
        );
        assert!(n <= 512);
        // A trivial coroutine is one 128-byte allocation: keep it so.
        assert_eq!(std::mem::size_of::<super::Header>(), 80);
        assert_eq!(n, 128);
    }
}
