//! Spawning: the coroutine [`Builder`], [`spawn`], and the errors a spawn can meet.

use super::join::JoinHandle;
use crate::sched::context;
use crate::sched::shared::Shared;
use crate::sched::task::{Header, G};
use crate::Handle;
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Configures one coroutine before it is spawned, as `std::thread::Builder` does.
///
/// ```
/// let h = corun::Builder::new()
///     .name("worker-7")
///     .stack_size(128 * 1024)
///     .spawn(|| corun::current().name().map(str::to_owned))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker-7"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
    migratable: bool,
    dedicated: bool,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine (shown in panic messages and overflow reports).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Gives the coroutine its own stack of `bytes` (rounded up to pages) instead of
    /// the runtime's default size. Such stacks are mapped for it alone, not pooled.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Lets the scheduler move this coroutine to another worker thread at any point
    /// where it parks or yields, as Go moves goroutines.
    ///
    /// # Safety
    /// The coroutine resumes on whichever worker runs it next, so across every
    /// blocking point (any call that may park or yield: channel and lock operations,
    /// `join`, `sleep`, `yield_now`) it must not hold:
    /// - a reference into thread-local storage, nor use a `thread_local!` both before
    ///   and after the blocking point in one function (LLVM may cache its address);
    /// - any `!Send` value (`Rc`, `RefCell` borrows of thread-bound data, a std
    ///   `MutexGuard`, `stdout().lock()`, raw pointers to thread-owned data);
    /// - anything that records the thread's identity (a reentrant lock, a thread id);
    /// - a `!Send` value in a [`crate::coroutine_local!`] it has used (the values
    ///   move with the coroutine).
    ///
    /// See `docs/safety.md`.
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    /// Runs the coroutine on an OS thread of its own (Go's `runtime.LockOSThread`
    /// for the goroutine's whole life): nothing else ever runs on that thread, and
    /// the thread exits when the coroutine ends.
    ///
    /// For code that must own its thread: thread-affine C libraries, `setns` or
    /// `unshare`, per-thread credentials or signal masks (none of it leaks to other
    /// coroutines, and corun makes no thread of its own from a dedicated one: see
    /// `docs/services.md`). Also for a coroutine that must never wait behind a
    /// neighbour stuck in a blocking call, such as an acceptor or a health check:
    /// a started coroutine never leaves its worker, so on a shared worker it waits
    /// for that worker.
    ///
    /// Everything else works from it as from any coroutine: channels, locks, sockets
    /// (on a netpoller of its own), `sleep`, `join`; what it spawns runs on the
    /// runtime's workers (connections it accepts start on the least loaded one). It
    /// counts in `dump`, `metrics` and deadlock detection. At most
    /// [`RuntimeBuilder::dedicated_threads`](crate::RuntimeBuilder::dedicated_threads)
    /// run at once.
    ///
    /// ```
    /// let me = std::thread::current().id();
    /// let h = corun::Builder::new()
    ///     .name("health")
    ///     .dedicated_thread()
    ///     .spawn(move || std::thread::current().id() != me)
    ///     .unwrap();
    /// assert!(h.join().unwrap());
    /// ```
    pub fn dedicated_thread(mut self) -> Builder {
        self.dedicated = true;
        self
    }

    pub(super) fn is_dedicated(&self) -> bool {
        self.dedicated
    }

    /// Spawns `f` as a coroutine: on the caller's runtime inside a coroutine, on the
    /// default runtime from a plain thread.
    ///
    /// Errors: a stack size too small, or a runtime that is shutting down. A stack
    /// that cannot be mapped when the coroutine first runs fails that coroutine alone:
    /// its `join()` returns `Err` with a [`SpawnError`] payload.
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // A coroutine always runs on a worker of its own runtime, so the worker
        // names the runtime (one thread-local read, and no reference count taken).
        let mut args = Some((self, f));
        let on_worker = context::with_worker(|w| {
            let (b, f) = args.take().expect("taken once");
            b.spawn_in(&w.shared, f)
        });
        match on_worker {
            Some(r) => r,
            None => {
                let (b, f) = args.take().expect("taken once");
                b.spawn_in(&crate::runtime::handle::default_handle().shared, f)
            }
        }
    }

    /// Spawns `f` on the runtime of `handle`.
    pub fn spawn_on<F, T>(self, handle: &Handle, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_in(&handle.shared, f)
    }

    pub(super) fn spawn_in<F, T>(self, rt: &Arc<Shared>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let dedicated = self.dedicated;
        let g = self.make(rt, f)?;
        submit(rt, g.clone(), dedicated)?;
        Ok(JoinHandle::new(g))
    }

    /// Builds the task without queueing it. `F` may borrow (scoped coroutines); the
    /// caller guarantees it does not outlive what it borrows.
    pub(super) fn make<F, T>(self, rt: &Arc<Shared>, f: F) -> io::Result<G>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        if self.stack_size != 0 {
            crate::coroutine::stack::checked_size(self.stack_size)?;
        }
        // The pointer keeps the provenance of the whole `Arc` allocation: a waker
        // from outside may take a reference through it (`sched/shared.rs`).
        let header = Header::new(
            next_id(),
            Arc::as_ptr(rt),
            self.name.map(String::into_boxed_str),
            self.stack_size,
            // A dedicated coroutine has its thread: it never moves.
            self.migratable && !self.dedicated,
        );
        // SAFETY: 'static closures borrow nothing; scoped coroutines (`scope.rs`)
        // guarantee that the closure and its result are gone before what they borrow.
        Ok(unsafe { G::new(header, f) })
    }
}

/// Queues a built task on `rt`, or starts its own thread if it is `dedicated`.
pub(super) fn submit(rt: &Arc<Shared>, g: G, dedicated: bool) -> io::Result<()> {
    if dedicated {
        return crate::sched::dedicated::spawn(rt, g).map_err(|(_, e)| e);
    }
    rt.spawn(g).map_err(|_| {
        io::Error::other("the corun runtime is shutting down: it no longer accepts new coroutines (spawn before dropping the Runtime)")
    })?;
    // A loop that only spawns still yields when sysmon asks (it is no hog) or a
    // woken coroutine waits.
    crate::sched::budget::checkpoint();
    Ok(())
}

/// Spawns a coroutine running `f` and returns its handle; see [`Builder::spawn`].
///
/// Inside a coroutine it spawns onto that coroutine's runtime; from a plain thread
/// onto the default runtime, started on first use. In a coroutine, a spawn may let
/// the worker's other coroutines run first (when sysmon asks for a switch, or one
/// woken by another thread waits), as a channel operation may: hold no
/// `std::sync::MutexGuard` or thread-local borrow across it.
///
/// # Panics
/// If the runtime is shutting down; use [`Builder::spawn`] to get an error instead.
///
/// ```
/// let h = corun::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("corun::spawn failed: {e}"),
    }
}

static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);
const ID_BLOCK: u64 = 1024;

thread_local! {
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A fresh coroutine id, from a per-thread block so spawning threads do not
/// contend on one counter. Ids grow with spawn order within a thread.
#[inline(never)]
pub(super) fn next_id() -> u64 {
    IDS.with(|c| {
        let (mut next, mut end) = c.get();
        if next == end {
            next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        c.set((next + 1, end));
        next
    })
}
