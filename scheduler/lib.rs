//! corun: Go's runtime as a Rust library.
//!
//! Stackful coroutines written as plain blocking code, spread by an M:N
//! work-stealing scheduler (Go's G/P/M) over every core, with a safe API that is
//! sound: a coroutine may change thread only before it first runs.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let sum = Arc::new(AtomicU64::new(0));
//! let handles: Vec<_> = (1..=100u64)
//!     .map(|i| {
//!         let sum = sum.clone();
//!         corun::go!(move || {
//!             corun::yield_now(); // let the others run
//!             sum.fetch_add(i, Ordering::Relaxed);
//!         })
//!     })
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(sum.load(Ordering::Relaxed), 5050);
//! ```
//!
//! - [`go!`] / [`spawn`] / [`Builder`] start coroutines; [`JoinHandle::join`] waits.
//! - [`yield_now`], [`sleep`], [`park`] and [`current`] act on the calling coroutine,
//!   or on the calling thread outside one, so the same code works in both.
//! - [`chan`] has Go's channels, and [`select!`] waits on several of them.
//! - [`scope`] runs coroutines that borrow from the caller's stack.
//! - [`Runtime`] builds a runtime of its own; without one, a default runtime starts
//!   on first use.
//! - [`JoinHandle::cancel`] asks a coroutine to stop: it unwinds from its next
//!   cancellation point and its `join()` gives a [`Cancelled`] payload.
//! - [`Context`] is Go's `context.Context`: cancellation and deadlines handed to
//!   work, which waits with the `_ctx` forms of the blocking operations
//!   (`recv_ctx`, `send_ctx`, `lock_ctx`, [`sleep_ctx`], `accept_ctx`, `read_ctx`...)
//!   and gets a [`ContextError`] back instead of waiting on; [`Group`] is Go's
//!   `errgroup`: coroutines joined together, cancelled when one fails. See
//!   [`context`].
//! - [`net`] has TCP, UDP and Unix sockets with `std`'s API whose waits park the
//!   coroutine on the runtime's netpoller; [`signal::notify`] delivers OS signals
//!   on a channel.
//! - [`await_future`] waits for a `Future`, parking the coroutine; with the cargo
//!   feature `tokio` it also runs tokio-based futures (hyper, redis, sqlx...), on a
//!   tokio runtime corun starts for the purpose.
//! - [`Generator`] is Python's `yield`/`send` generator on a stack of its own; it runs
//!   on the caller's thread and needs no runtime.
//! - [`dump`] lists every live coroutine and what it waits on, as Go's goroutine dump;
//!   [`metrics`] counts what the scheduler did; `CORUN_SCHEDTRACE=<ms>` prints Go's
//!   schedtrace line; `CORUN_STACK_STATS=1` measures stack use ([`stack_high_water`]);
//!   `CORUN_TRACE=<file>` ([`RuntimeBuilder::trace`]) records which coroutine ran when
//!   on each worker as a Chrome trace for Perfetto (`docs/trace.md` says how to read
//!   one).
//!
//!
//! # When things go wrong
//!
//! - **A panic** in a coroutine ends that coroutine only; its `join()` returns the
//!   payload. corun's panic hook prints `coroutine 'name' (#id) panicked (on
//!   corun-worker-N):` and chains to the hook installed before the first runtime
//!   (yours, or std's, which prints the message and, with `RUST_BACKTRACE=1`, the
//!   backtrace of the coroutine's own stack). A hook you install later replaces
//!   corun's: name the coroutine in it with [`current()`]`.name()`.
//! - **A stack overflow** aborts the process with `coroutine 'name' overflowed its
//!   stack of N KiB` and the fix. Stacks are [`DEFAULT_STACK_SIZE`] (256 KiB) unless
//!   set with [`Builder::stack_size`] (one coroutine) or
//!   [`RuntimeBuilder::stack_size`] (every coroutine of a runtime). A stack is
//!   reserved address space plus a guard page: only the pages a coroutine touches
//!   use memory (4 KiB at least), and finished coroutines' stacks are pooled.
//!   `CORUN_STACK_STATS=1` (or [`RuntimeBuilder::stack_stats`]) measures how much of
//!   its stack each coroutine touched ([`stack_high_water`], [`dump`]).
//! - **A coroutine that computes without a yield point, or blocks its thread** is
//!   asked by sysmon to yield after 10 ms; if it does not, its worker's queue moves
//!   to another thread, and stderr says which coroutine, whether it computed or was
//!   blocked in a system call, and the fix ([`yield_now`], [`blocking()`]).
//!
//! See `docs/services.md` for writing a service (patterns and what never to do on a
//! worker), `docs/architecture.md` for the design and `docs/safety.md` for the
//! soundness contract.
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod await_future;
pub mod blocking;
pub mod chan;
pub mod context;
/// The fiber layer on its own: a function on a stack of its own, switched to and from
/// (`examples/prof.rs` measures the bare switch with it). The runtime is built on it.
pub mod coroutine;
pub mod fs;
mod generator;
mod loom;
pub mod net;
mod netpoll;
mod observe;
mod runtime;
mod sched;
pub mod signal;
pub mod sync;
mod time;

pub use await_future::await_future;
pub use blocking::blocking;
pub use context::{sleep_ctx, CancelHandle, Context, ContextError, Group};
pub use generator::{Co, Generator, GeneratorState, GENERATOR_STACK_SIZE};
pub use observe::metrics::{Metrics, WorkerMetrics};
pub use runtime::builder::{RuntimeBuilder, DEFAULT_STACK_SIZE};
pub use runtime::handle::{Handle, Runtime};
pub use runtime::join::{current, Coroutine, CoroutineId, JoinHandle};
pub use runtime::scope::{scope, Scope, ScopedJoinHandle};
pub use runtime::spawn::{spawn, Builder};
pub use sched::cancel::Cancelled;
pub use sched::deadlock::Deadlock;
pub use sched::local::{AccessError, LocalKey};
pub use sched::spawn_error::SpawnError;
pub use sched::warnings::Warnings;
pub use time::{sleep, sleep_until};

/// Spawns a coroutine running the closure; shorthand for [`spawn`].
///
/// ```
/// let h = corun::go!(|| "hello from a coroutine");
/// assert_eq!(h.join().unwrap(), "hello from a coroutine");
/// ```
#[macro_export]
macro_rules! go {
    ($f:expr) => {
        $crate::spawn($f)
    };
}

/// Lets the other runnable coroutines of this worker run, then continues. On a
/// plain thread it yields the thread.
///
/// ```
/// let h = corun::spawn(|| {
///     for _ in 0..3 {
///         corun::yield_now();
///     }
///     "done"
/// });
/// assert_eq!(h.join().unwrap(), "done");
/// ```
pub fn yield_now() {
    sched::park::yield_now()
}

/// Blocks the calling coroutine (freeing its worker) or thread until
/// [`Coroutine::unpark`] is called on it. May return spuriously: call it in a loop
/// that checks a condition, as with `std::thread::park`.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// let flag = Arc::new(AtomicBool::new(false));
/// let f = flag.clone();
/// let h = corun::spawn(move || {
///     while !f.load(Ordering::Acquire) {
///         corun::park();
///     }
/// });
/// flag.store(true, Ordering::Release);
/// h.coroutine().unpark();
/// h.join().unwrap();
/// ```
pub fn park() {
    sched::park::park(sched::park::Reason::Park, None, sched::park::Cancel::Point)
}

/// Every live coroutine of the caller's runtime (the default one outside a
/// coroutine), one block each, as Go's goroutine dump: id, name, state (running,
/// runnable, or what it waits on: a channel, a select, a lock, a sleep with its
/// deadline, a join, IO, a blocking call...) and for how long, its worker, and its
/// stack use. Works while every worker is busy: it reads the scheduler's state
/// without asking the workers.
///
/// ```text
/// corun: 2 workers, 2 coroutines started and alive, 0 waiting in run queues (global 0, local [0, 0])
///
/// coroutine 3 "consumer" [chan receive, 1.2s]:
///         worker 0, stack 8 KiB used of 256 KiB
///
/// coroutine 4 [sleep, 15ms, until +985ms]:
///         worker 1, stack 4 KiB used of 256 KiB
/// ```
///
/// ```
/// let m = std::sync::Arc::new(corun::sync::Mutex::new(()));
/// let guard = m.lock();
/// let m2 = m.clone();
/// let h = corun::Builder::new()
///     .name("waiter")
///     .spawn(move || drop(m2.lock()))
///     .unwrap();
/// while !corun::dump().contains("\"waiter\" [sync.Mutex.Lock") {
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// }
/// drop(guard);
/// h.join().unwrap();
/// ```
pub fn dump() -> String {
    runtime::handle::current_or_default().dump()
}

/// A snapshot of the caller's runtime's counters (the default runtime outside a
/// coroutine); see [`Metrics`].
///
/// ```
/// corun::spawn(|| ()).join().unwrap();
/// let m = corun::metrics();
/// assert!(m.spawned() >= 1);
/// assert!(!m.workers.is_empty());
/// ```
pub fn metrics() -> Metrics {
    runtime::handle::current_or_default().metrics()
}

/// How deep the calling coroutine's stack has been used so far, in bytes (page
/// granularity), when its runtime measures stacks
/// ([`RuntimeBuilder::stack_stats`], `CORUN_STACK_STATS=1`); `None` otherwise, or
/// outside a coroutine.
///
/// ```
/// let rt = corun::Runtime::builder().workers(1).stack_stats(true).build().unwrap();
/// let used = rt.block_on(|| corun::stack_high_water());
/// assert!(used.unwrap() < 64 * 1024);
/// ```
pub fn stack_high_water() -> Option<usize> {
    observe::dump::current_stack_high_water()
}

/// As [`park`], returning after `timeout` at the latest.
pub fn park_timeout(timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    sched::park::park(
        sched::park::Reason::Park,
        Some(deadline),
        sched::park::Cancel::Point,
    )
}
