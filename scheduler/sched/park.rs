//! The parking protocol: the one interface through which anything waits.
//!
//! A channel, a lock, `join` and `sleep` all wait the same way: take a [`Waiter`] for
//! the caller ([`Waiter::current`]), publish it where the waker will find it, then
//! [`park`] until the condition holds, re-checking it after every return (a park may
//! return early). The waker calls [`Waiter::unpark`]. A coroutine parks itself and
//! frees its worker; a plain thread blocks. New primitives never touch the run queues.
//!
//! Each coroutine carries a one-token park state, as `std::thread::park` has:
//!
//! ```text
//!            unpark                   park (token present: consume, return)
//!  RUNNING ---------> NOTIFIED ------------------------------------> RUNNING
//!     | park: switch out, then the worker CASes RUNNING -> PARKED
//!     v                       (fails if NOTIFIED: the worker requeues it at once)
//!   PARKED --unpark: CAS PARKED -> QUEUED, push to its worker--> QUEUED --run--> RUNNING
//! ```
//!
//! The CAS to PARKED happens on the worker's stack, after the coroutine's context is
//! saved, so no waker can queue a coroutine that has not finished switching out. An
//! unpark that finds NOTIFIED or QUEUED does nothing: the coroutine will run and
//! re-check its condition anyway. Hence no wakeup is lost.

use super::context;
use super::task::{Request, Task, G, NOTIFIED, PARKED, QUEUED, RUNNING};
pub(crate) use super::wait::Reason;
#[cfg(feature = "tokio")]
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// Something that can be woken: a coroutine, or a plain thread.
#[derive(Clone)]
pub(crate) enum Waiter {
    Coroutine(G),
    Thread(Arc<ThreadWaiter>),
}

impl Waiter {
    /// The caller: its coroutine if it runs in one, else its thread.
    pub(crate) fn current() -> Waiter {
        match context::current_task() {
            Some(g) => Waiter::Coroutine(g),
            None => Waiter::Thread(ThreadWaiter::current()),
        }
    }

    /// Whether both name the same coroutine or thread.
    pub(crate) fn same(&self, other: &Waiter) -> bool {
        match (self, other) {
            (Waiter::Coroutine(a), Waiter::Coroutine(b)) => a.as_ptr() == b.as_ptr(),
            (Waiter::Thread(a), Waiter::Thread(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Wakes the waiter, or makes its next park return at once.
    pub(crate) fn unpark(&self) {
        match self {
            Waiter::Coroutine(g) => unpark(g),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

/// Wakes coroutine `g`: see the module docs for the states.
pub(crate) fn unpark(g: &G) {
    let st = &g.header.state;
    let mut s = st.load(Ordering::Acquire);
    loop {
        let to = match s {
            RUNNING => NOTIFIED,
            PARKED => QUEUED,
            _ => return,
        };
        match st.compare_exchange_weak(s, to, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) if to == QUEUED => {
                if super::wait::deadlockable(g.header.wait.load(Ordering::Relaxed)) {
                    // SAFETY: this coroutine was parked, so it is unfinished, and a
                    // runtime's shared state is freed only once all its coroutines
                    // finished (or is leaked: `Runtime::drop`); it cannot finish
                    // before `schedule_woken` queues it.
                    let rt = unsafe { &*g.header.rt };
                    rt.parked_untimed.fetch_sub(1, Ordering::SeqCst);
                }
                // SAFETY: we moved `g` from PARKED to QUEUED just now (see above).
                unsafe { super::shared::Shared::schedule_woken(g.clone()) };
                return;
            }
            Ok(_) => return,
            Err(actual) => s = actual,
        }
    }
}

/// Whether a waiter may spin a little before parking: a plain thread, or a coroutine
/// whose worker has nothing else to run (Go's `canSpin` idea). Spinning then costs no
/// other coroutine its turn and saves the futex sleep/wake of a cross-worker wake.
pub(crate) fn may_spin() -> bool {
    match context::current_task_ptr() {
        Some(_) => context::with_worker(|w| !w.has_local_work()).unwrap_or(false),
        None => true,
    }
}

/// Whether a wait is a cancellation point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// A cancelled coroutine unwinds here instead of waiting: every ordinary wait.
    Point,
    /// The wait completes even while the coroutine is being cancelled: a scope
    /// waiting for the children that borrow its stack, a blocking call's result.
    Ignore,
}

/// Parks the caller until unparked, or until `deadline` passes if there is one
/// (Go's `gopark`). It may return spuriously: re-check the condition. `reason` is
/// what the caller waits on, as `dump` shows it (the core only stores it).
///
/// A coroutine switches out and frees its worker; a plain thread blocks, counted by
/// deadlock detection when it waits on a corun primitive with no deadline.
pub(crate) fn park(reason: Reason, deadline: Option<Instant>, cancel: Cancel) {
    if context::with_current(|t| park_coroutine(t, deadline, reason, cancel)).is_none() {
        park_thread(reason, deadline);
    }
}

/// The thread half of [`park`].
fn park_thread(reason: Reason, deadline: Option<Instant>) {
    match deadline {
        Some(d) => {
            let now = Instant::now();
            if d > now {
                Token::wait_here(Some(d - now));
            }
        }
        None if reason.waits_on_corun() => ThreadWaiter::current().park(),
        None => Token::wait_here(None),
    }
}

fn park_coroutine(t: &Task, deadline: Option<Instant>, reason: Reason, cancel: Cancel) {
    no_switch_check();
    let h = &t.header;
    let point = cancel == Cancel::Point;
    if point {
        super::cancel::checkpoint(h);
    }
    if point && super::cancel::is_requested(h) {
        // Cancelled, yet the checkpoint did not raise because this thread is
        // unwinding: this coroutine (a destructor waiting during its own unwind), or
        // another one of this worker suspended mid-unwind (std's panic count is per
        // thread). Do not sleep, or the cancellation could be lost: come back after
        // the others ran and check again. For the caller this is a spurious wakeup.
        // SAFETY: we are this coroutine, running on its own stack.
        unsafe { h.suspend(Request::Yield) };
        super::cancel::checkpoint(h);
        return;
    }
    if h.state
        .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    if let Some(d) = deadline {
        if let Some(g) = context::current_task() {
            if h.migratable {
                // Any M (or sysmon) fires it: its own M may be stuck when it is due.
                // SAFETY: this coroutine is running, so unfinished: its runtime's
                // shared state is alive (see `unpark`).
                let rt = unsafe { &*h.rt };
                rt.add_portable_timer(d, g);
            } else {
                context::with_worker(|w| w.add_timer(d, g));
            }
        }
    }
    h.wait
        .store(super::wait::encode(reason, deadline), Ordering::Relaxed);
    // SAFETY: we are this coroutine, running on its own stack.
    unsafe { h.suspend(Request::Park) };
    h.timer_seq.store(0, Ordering::Relaxed);
    if point {
        super::cancel::checkpoint(h);
    }
}

/// Gives the worker to the other runnable coroutines, then continues.
pub(crate) fn yield_now() {
    let yielded = context::with_current(|t| {
        no_switch_check();
        let h = &t.header;
        super::cancel::checkpoint(h);
        // SAFETY: we are this coroutine, running on its own stack.
        unsafe { h.suspend(Request::Yield) };
        super::cancel::checkpoint(h);
    });
    if yielded.is_none() {
        thread::yield_now();
    }
}

// Only the tokio bridge holds a `NoSwitch`: without the feature nothing can be set,
// and the check costs a park or a yield nothing.
#[cfg(feature = "tokio")]
thread_local! {
    /// Why the coroutine running on this thread must not switch now, if it must not
    /// (std's thread-local under loom too: no model sets it).
    static NO_SWITCH: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// While it lives, a coroutine of this thread that parks or yields panics with
/// `why` instead: `await_future` holds one around each poll it makes inside tokio's
/// context, which a switch would hand to the next coroutine. Plain threads may park.
/// The coroutine cannot switch while it lives, so it stays on this thread.
#[cfg(feature = "tokio")]
pub(crate) struct NoSwitch(Option<&'static str>);

#[cfg(feature = "tokio")]
impl NoSwitch {
    pub(crate) fn new(why: &'static str) -> NoSwitch {
        NoSwitch(swap_no_switch(Some(why)))
    }
}

#[cfg(feature = "tokio")]
impl Drop for NoSwitch {
    fn drop(&mut self) {
        swap_no_switch(self.0);
    }
}

#[cfg(feature = "tokio")]
#[inline(never)]
fn swap_no_switch(why: Option<&'static str>) -> Option<&'static str> {
    NO_SWITCH.with(|c| c.replace(why))
}

/// Panics if a [`NoSwitch`] is held: called by a coroutine about to switch.
#[inline(always)]
fn no_switch_check() {
    #[cfg(feature = "tokio")]
    no_switch_held();
}

#[cfg(feature = "tokio")]
#[inline(never)]
fn no_switch_held() {
    if let Some(why) = NO_SWITCH.with(Cell::get) {
        panic!("{why}");
    }
}

/// Whether no [`NoSwitch`] is held on this thread (the budget skips its yield
/// then; `await_future` does not enter tokio's context twice).
#[cfg_attr(loom, allow(dead_code))] // the budget does not yield under loom
#[inline(always)]
pub(crate) fn may_switch() -> bool {
    #[cfg(feature = "tokio")]
    return no_switch_clear();
    #[cfg(not(feature = "tokio"))]
    true
}

// The thread-local is read behind `inline(never)`, as `context.rs` reads its own: a
// migratable coroutine must not reuse an address cached before a switch.
#[cfg(feature = "tokio")]
#[inline(never)]
fn no_switch_clear() -> bool {
    NO_SWITCH.with(Cell::get).is_none()
}

/// A plain thread as a waiter: counted waiting from its park until a waker (or its
/// own return) takes it out, so a thread already woken never counts as blocked.
pub(crate) struct ThreadWaiter {
    pub(crate) thread: std::thread::Thread,
    token: Token,
    waiting: AtomicBool,
}

impl ThreadWaiter {
    /// The calling thread's.
    pub(crate) fn current() -> Arc<ThreadWaiter> {
        fn make() -> Arc<ThreadWaiter> {
            Arc::new(ThreadWaiter {
                thread: std::thread::current(),
                token: Token::new(),
                waiting: AtomicBool::new(false),
            })
        }
        #[cfg(not(loom))]
        thread_local! {
            static ME: Arc<ThreadWaiter> = make();
        }
        // loom's threads share one OS thread: each needs its own.
        #[cfg(loom)]
        loom::thread_local! {
            static ME: Arc<ThreadWaiter> = make();
        }
        ME.with(Arc::clone)
    }

    /// Parks the calling thread (which this must be), counted as blocked in corun.
    pub(crate) fn park(&self) {
        if !self.waiting.swap(true, Ordering::SeqCst) {
            super::deadlock::WAITING_THREADS.fetch_add(1, Ordering::SeqCst);
        }
        self.token.wait(None);
        self.stop_waiting();
    }

    fn stop_waiting(&self) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            super::deadlock::WAITING_THREADS.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn unpark(&self) {
        self.stop_waiting();
        self.token.wake(&self.thread);
    }
}

/// How a plain thread sleeps: std's one-token `park`/`unpark`. Under loom, whose
/// threads stand in for coroutines and threads in the models, the same one-token
/// protocol on a loom lock and condition variable (loom's own `unpark` would also wake
/// a thread blocked on a loom `Mutex`, which its models reject).
#[cfg(not(loom))]
struct Token;

#[cfg(not(loom))]
impl Token {
    fn new() -> Token {
        Token
    }

    /// Sleeps until woken (or the timeout passes); may return spuriously. Only the
    /// thread it was made on calls this.
    fn wait(&self, timeout: Option<std::time::Duration>) {
        Self::wait_here(timeout)
    }

    /// As `wait`, on the calling thread's token: std's, which needs no thread-local
    /// (so it works during thread exit too).
    fn wait_here(timeout: Option<std::time::Duration>) {
        match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
    }

    fn wake(&self, thread: &std::thread::Thread) {
        thread.unpark();
    }
}

#[cfg(loom)]
struct Token {
    set: crate::loom::sync::Mutex<bool>,
    cv: crate::loom::sync::Condvar,
}

#[cfg(loom)]
impl Token {
    fn new() -> Token {
        Token {
            set: crate::loom::sync::Mutex::new(false),
            cv: crate::loom::sync::Condvar::new(),
        }
    }

    /// As above; loom has no clock, so a timeout never passes (a model relying on
    /// one deadlocks instead of hiding a lost wake-up).
    fn wait(&self, _timeout: Option<std::time::Duration>) {
        let mut set = self.set.lock();
        while !*set {
            self.cv.wait(&mut set);
        }
        *set = false;
    }

    fn wait_here(timeout: Option<std::time::Duration>) {
        ThreadWaiter::current().token.wait(timeout)
    }

    fn wake(&self, _thread: &std::thread::Thread) {
        *self.set.lock() = true;
        self.cv.notify_one();
    }
}
