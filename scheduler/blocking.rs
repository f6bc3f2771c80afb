//! Blocking calls off the workers: [`blocking`](crate::blocking) and its thread pool.
//!
//! A closure that would block its thread (file IO, name resolution, a C library)
//! runs on a separate pool of plain threads while the calling coroutine parks and
//! its worker runs other coroutines. The pool:
//!
//! - is started lazily: no thread exists before the first call from a coroutine;
//! - is bounded: at most [`max_threads`] threads (default [`DEFAULT_MAX_THREADS`],
//!   or the environment variable `CORUN_BLOCKING_THREADS` read when the pool is
//!   first used, or [`set_max_threads`]); when every thread is busy, jobs wait in a
//!   FIFO queue;
//! - reaps idle threads: a thread with no job for [`idle_timeout`] (default
//!   [`DEFAULT_IDLE_TIMEOUT`], changed with [`set_idle_timeout`]) exits.
//!
//! ```
//! use std::time::Duration;
//! let h = corun::spawn(|| {
//!     corun::blocking(|| {
//!         std::thread::sleep(Duration::from_millis(10)); // would block a worker
//!         6 * 7
//!     })
//! });
//! assert_eq!(h.join().unwrap(), 42);
//! assert!(corun::blocking::threads() <= corun::blocking::max_threads());
//! ```

use crate::loom::sync::{Condvar, Mutex};
use crate::sched::{cancel, context, park};
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The default bound on the pool's threads (as tokio's `max_blocking_threads`).
pub const DEFAULT_MAX_THREADS: usize = 512;

/// How long a pool thread waits for a job before it exits, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

struct State {
    queue: VecDeque<Job>,
    /// Threads alive (busy or idle).
    threads: usize,
    /// Threads waiting on `cv` for a job.
    idle: usize,
    max: usize,
    keep_alive: Duration,
}

struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let max = std::env::var("CORUN_BLOCKING_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_THREADS);
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                max,
                keep_alive: DEFAULT_IDLE_TIMEOUT,
            }),
            cv: Condvar::new(),
        }
    })
}

impl Pool {
    /// Queues `job`, waking an idle thread or starting a new one if the queue holds
    /// more jobs than there are idle threads to take them.
    fn submit(&'static self, job: Job) {
        let mut st = self.state.lock();
        st.queue.push_back(job);
        if st.queue.len() <= st.idle {
            // Each notify wakes a distinct waiting thread, which takes one job.
            self.cv.notify_one();
            return;
        }
        if st.threads >= st.max {
            return; // a busy thread takes it when done
        }
        st.threads += 1;
        drop(st);
        // Never made from a dedicated thread, whose namespaces it would inherit.
        let spawned = crate::sched::template::spawn("corun-blocking".into(), move || self.run());
        if spawned.is_err() {
            let mut st = self.state.lock();
            st.threads -= 1;
            if st.threads == 0 {
                // Nobody would ever take the queue: run it here rather than hang.
                let jobs: Vec<Job> = st.queue.drain(..).collect();
                drop(st);
                jobs.into_iter().for_each(|j| j());
            }
        }
    }

    /// A pool thread: takes jobs until it has been idle for `keep_alive`, or the
    /// pool holds more threads than its (lowered) bound.
    fn run(&self) {
        let mut st = self.state.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job(); // never unwinds: `blocking` catches the closure's panic
                st = self.state.lock();
                idle_since = Instant::now();
                continue;
            }
            let deadline = idle_since + st.keep_alive;
            if Instant::now() >= deadline || st.threads > st.max {
                st.threads -= 1;
                return;
            }
            st.idle += 1;
            // Woken by a job, by a change of settings, or by the deadline: re-check.
            let idle = crate::sched::deadlock::Asleep::enter();
            self.cv
                .wait_timeout(&mut st, deadline.saturating_duration_since(Instant::now()));
            drop(idle);
            st.idle -= 1;
        }
    }
}

/// The number of threads the pool holds now, busy or idle.
///
/// ```
/// let n = corun::blocking::threads();
/// assert!(n <= corun::blocking::max_threads());
/// ```
pub fn threads() -> usize {
    pool().state.lock().threads
}

/// The bound on the pool's threads.
///
/// ```
/// assert!(corun::blocking::max_threads() >= 1);
/// ```
pub fn max_threads() -> usize {
    pool().state.lock().max
}

/// Sets the bound on the pool's threads (at least 1). Lowering it does not stop a
/// running closure: threads above the bound exit when they next become idle.
///
/// ```
/// corun::blocking::set_max_threads(64);
/// assert_eq!(corun::blocking::max_threads(), 64);
/// ```
///
/// # Panics
/// If `n` is 0.
pub fn set_max_threads(n: usize) {
    assert!(n > 0, "the blocking pool needs at least one thread");
    let p = pool();
    p.state.lock().max = n;
    p.cv.notify_all();
}

/// How long an idle pool thread waits for a job before it exits.
///
/// ```
/// assert!(corun::blocking::idle_timeout() > std::time::Duration::ZERO);
/// ```
pub fn idle_timeout() -> Duration {
    pool().state.lock().keep_alive
}

/// Sets how long an idle pool thread waits for a job before it exits; it applies
/// to the threads idle now too.
///
/// ```
/// use std::time::Duration;
/// corun::blocking::set_idle_timeout(Duration::from_secs(5));
/// assert_eq!(corun::blocking::idle_timeout(), Duration::from_secs(5));
/// ```
pub fn set_idle_timeout(d: Duration) {
    let p = pool();
    p.state.lock().keep_alive = d;
    p.cv.notify_all();
}

/// Where the closure's outcome waits for the coroutine.
struct Slot<T> {
    result: Mutex<Option<thread::Result<T>>>,
    waiter: park::Waiter,
}

/// Runs `f`, a closure that would block its thread, on the blocking pool, and
/// parks the calling coroutine (freeing its worker) until it returns; then returns
/// its value. On a plain thread (outside any coroutine) it runs `f` right there.
///
/// A panic in `f` is raised again in the caller with its payload.
///
/// Cancellation: `blocking` is a cancellation point on entry (a coroutine already
/// cancelled does not start `f`) and on return. A coroutine cancelled while `f`
/// runs keeps waiting until `f` has returned (a running closure is never
/// abandoned), then unwinds with [`Cancelled`](crate::Cancelled), dropping `f`'s
/// result.
///
/// ```
/// let h = corun::spawn(|| {
///     let text = corun::blocking(|| std::env::var("PATH").unwrap_or_default());
///     text.len()
/// });
/// h.join().unwrap();
///
/// // A panic comes back to the caller.
/// let h = corun::spawn(|| corun::blocking(|| panic!("boom")));
/// let err = h.join().unwrap_err();
/// assert_eq!(*err.downcast_ref::<&str>().unwrap(), "boom");
/// ```
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    blocking_scoped(f)
}

/// [`blocking`] for a closure that borrows from the caller (name resolution of a
/// borrowed address): sound because the caller cannot return or unwind before the
/// pool has run the closure and let go of everything it borrowed.
pub(crate) fn blocking_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    if context::current_task_ptr().is_none() {
        return f();
    }
    cancel::checkpoint_current();
    let slot = Arc::new(Slot {
        result: Mutex::new(None),
        waiter: park::Waiter::current(),
    });
    let theirs = slot.clone();
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        // Publish, then wake: the waiter re-checks the slot after every park. The
        // closure was consumed above, so all the job still holds is `theirs`, whose
        // result is taken by the caller (nothing of lifetime 'a is dropped late:
        // see the SAFETY comment below).
        let waiter = theirs.waiter.clone();
        *theirs.result.lock() = Some(r);
        drop(theirs);
        waiter.unpark();
    });
    // SAFETY: the job is 'static only on paper. The caller below waits, with no
    // cancellation point, until the job has published its result; by then `f` has
    // run and been dropped. After publishing, the job drops only its `Arc` of the
    // slot and wakes a `Waiter`, which is 'static. Its `Arc` may be the last one
    // (the caller can take the result and return first), but then the result has
    // been moved out, so dropping the slot drops no `T`. So nothing of lifetime 'a
    // is touched after the caller returns. (The `Waiter` may hold the last reference
    // to the coroutine: freeing it then runs the user's destructors of its result
    // here, guarded by `sched/task.rs` so that they cannot unwind this thread.)
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) };
    pool().submit(job);
    let r = loop {
        if let Some(r) = slot.result.lock().take() {
            break r;
        }
        // Not a cancellation point: `f` must finish before this coroutine unwinds.
        park::park(park::Reason::Blocking, None, park::Cancel::Ignore);
    };
    cancel::checkpoint_current();
    match r {
        Ok(v) => v,
        Err(payload) => resume_unwind(payload),
    }
}
