//! The thread-locals of the runtime: which worker this thread is, and which coroutine
//! it is running.
//!
//! Every accessor is `#[inline(never)]`: a coroutine that is `migratable` may resume on
//! another thread, and a thread-local address that LLVM cached in a register across
//! the switch would then point at the old thread's copy. An opaque call re-reads it.

use super::task::{Task, G};
use super::worker::Worker;
use std::cell::Cell;
use std::ptr;

thread_local! {
    static WORKER: Cell<*const Worker> = const { Cell::new(ptr::null()) };
}

/// Marks this thread as running worker `w` while the guard lives: dropping it (also
/// by unwinding) clears the mark, so the pointer never outlives the `Worker`.
pub(super) struct WorkerGuard<'a>(std::marker::PhantomData<&'a Worker>);

impl<'a> WorkerGuard<'a> {
    pub(super) fn set(w: &'a Worker) -> WorkerGuard<'a> {
        set_worker(w);
        WorkerGuard(std::marker::PhantomData)
    }
}

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        set_worker(ptr::null());
    }
}

#[inline(never)]
fn set_worker(w: *const Worker) {
    WORKER.with(|c| c.set(w));
}

/// Runs `f` on this thread's worker, if it is one.
#[inline(never)]
pub(crate) fn with_worker<R>(f: impl FnOnce(&Worker) -> R) -> Option<R> {
    let w = WORKER.with(|c| c.get());
    // SAFETY: the pointer is set by a `WorkerGuard` that borrows the `Worker` and
    // clears it when dropped, so it is null or points to a live `Worker` of this thread.
    unsafe { w.as_ref() }.map(f)
}

/// The running coroutine, as a raw pointer to its task.
///
/// The task stays alive while the coroutine runs (the worker's registry holds it), so
/// code running *on the coroutine's own stack* may dereference it.
#[inline(never)]
pub(crate) fn current_task_ptr() -> Option<ptr::NonNull<Task>> {
    // The worker records what it runs in its own `current` field (no thread-local
    // write per switch); outside a worker there is no coroutine.
    with_worker(|w| w.current.get()).flatten()
}

/// Runs `f` on the running coroutine's task, if the caller is a coroutine. The
/// reference cannot outlive the call, and the task outlives the call because the
/// coroutine is running in it (even if `f` suspends it).
pub(crate) fn with_current<R>(f: impl FnOnce(&Task) -> R) -> Option<R> {
    // SAFETY: see above: `current_task_ptr` is only `Some` on the coroutine's own
    // stack, where its task is alive (the worker's registry holds it).
    current_task_ptr().map(|p| f(unsafe { p.as_ref() }))
}

/// The running coroutine, if any.
pub(super) fn current_task() -> Option<G> {
    // SAFETY: the running coroutine's task is alive (see `current_task_ptr`).
    current_task_ptr().map(|p| unsafe { G::from_ptr(p) })
}
