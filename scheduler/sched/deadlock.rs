//! Global deadlock detection, as Go's `checkdead`: `fatal error: all coroutines are
//! asleep - deadlock!`, then exit status 2, when and only when corun can prove it.
//!
//! The proof, checked by sysmon:
//! - every live coroutine of the runtime is parked on a corun primitive with no
//!   timeout (channel, select, lock, condvar, join, scope, `corun::park`): the
//!   worker counts a coroutine into `Shared::parked_untimed` when it finishes
//!   switching out of such a park, and `unpark` counts it out when it queues it, so
//!   the count is exact; sleeps, timed waits, IO waits, futures and `blocking`
//!   calls are never counted, so any of them pending means no report;
//! - every thread of the process (`/proc/self/task`) is one of corun's own idle
//!   threads (a worker asleep, a sysmon, an idle blocking-pool thread) or a plain
//!   thread blocked in a corun wait with no timeout (`join`, `recv`, `lock` ...):
//!   a thread corun cannot account for may still act, so no report;
//! - every other runtime of the process has nothing but such parked coroutines;
//! - all this holds at two looks in a row with nothing switched in between.
//!
//! `CORUN_DEADLOCK=warn` prints the report and keeps waiting; `CORUN_DEADLOCK=off`
//! (or [`RuntimeBuilder::deadlock`](crate::RuntimeBuilder::deadlock)) turns it off.

use super::shared::Shared;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What to do on a proven deadlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deadlock {
    /// Print the report and exit with status 2, as Go does (the default).
    #[default]
    Exit,
    /// Print the report once per episode and keep waiting.
    Warn,
    /// Do not check.
    Off,
}

impl Deadlock {
    /// The mode from `CORUN_DEADLOCK` (`exit`, `warn`, `off`), else `Exit`.
    pub(crate) fn from_env() -> Deadlock {
        match std::env::var("CORUN_DEADLOCK").as_deref().map(str::trim) {
            Ok("warn") => Deadlock::Warn,
            Ok("off") | Ok("0") => Deadlock::Off,
            Ok("exit") | Ok("") | Err(_) => Deadlock::Exit,
            Ok(other) => {
                eprintln!(
                    "corun: CORUN_DEADLOCK={other:?} is not one of exit, warn, off; using exit"
                );
                Deadlock::Exit
            }
        }
    }
}

/// corun's own threads that are idle now (asleep workers, sysmons, idle pool threads).
static IDLE_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Plain threads blocked in a corun wait with no timeout.
pub(super) static WAITING_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Counts the calling corun thread idle until dropped.
pub(crate) struct Asleep(());

impl Asleep {
    pub(crate) fn enter() -> Asleep {
        IDLE_THREADS.fetch_add(1, Ordering::SeqCst);
        Asleep(())
    }
}

impl Drop for Asleep {
    fn drop(&mut self) {
        IDLE_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every runtime of the process: a coroutine of one may wake a coroutine of
/// another, so a deadlock is proven only if all are asleep.
static RUNTIMES: std::sync::Mutex<Vec<std::sync::Weak<Shared>>> = std::sync::Mutex::new(Vec::new());

/// Adds a runtime to those the proof looks at.
pub(crate) fn register(shared: &Arc<Shared>) {
    let mut all = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(shared));
}

/// Whether every other runtime has no coroutine that is not parked for good.
fn others_asleep(me: &Shared) -> bool {
    let all = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    all.iter().filter_map(|w| w.upgrade()).all(|rt| {
        std::ptr::eq(Arc::as_ptr(&rt), me) || alive(&rt) == rt.parked_untimed.load(Ordering::SeqCst)
    })
}

/// The process's threads, from `/proc/self/task`; `None` if unreadable.
fn threads_in_process() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// Whether every thread of the process is accounted for as idle or waiting in corun.
pub(super) fn all_threads_accounted() -> bool {
    let accounted = IDLE_THREADS.load(Ordering::SeqCst) + WAITING_THREADS.load(Ordering::SeqCst);
    threads_in_process() == Some(accounted)
}

/// Sysmon's deadlock watch over one runtime.
#[derive(Default)]
pub(super) struct Watch {
    /// (live, parked, switches) at the last look where everything held.
    last: Option<(usize, usize, u64)>,
    reported: bool,
}

impl Watch {
    /// One look (each sysmon round): reports a deadlock proven at two looks in a row.
    pub(super) fn look(&mut self, shared: &Shared) {
        if shared.deadlock == Deadlock::Off {
            return;
        }
        let Some(now) = Self::proof(shared) else {
            self.last = None;
            self.reported = false;
            return;
        };
        if self.last != Some(now) {
            self.last = Some(now);
            return;
        }
        if self.reported {
            return;
        }
        self.reported = true;
        eprintln!(
            "fatal error: all coroutines are asleep - deadlock!\n\n{}",
            report(shared, now.0)
        );
        if shared.deadlock == Deadlock::Exit {
            std::process::exit(2);
        }
    }

    /// (live, parked, switches) if every coroutine is parked for good and every
    /// thread is accounted for; the switch count shows nothing ran in between.
    fn proof(shared: &Shared) -> Option<(usize, usize, u64)> {
        let parked = shared.parked_untimed.load(Ordering::SeqCst);
        if parked == 0 {
            return None;
        }
        let live = alive(shared);
        if live != parked {
            return None;
        }
        let switches = shared
            .all_ms()
            .map(|r| r.counters.switches.load(Ordering::Relaxed))
            .sum();
        (all_threads_accounted() && others_asleep(shared)).then_some((live, parked, switches))
    }
}

/// The report's body: the dump of the runtime, as Go prints every goroutine.
fn report(shared: &Shared, live: usize) -> String {
    format!(
        "{live} coroutine(s) of runtime '{}' parked on channels, locks or joins with no \
         timeout, and no thread left that could wake them.\n\n{}",
        shared.name,
        (shared.observer.dump)(shared)
    )
}

/// Coroutines spawned and not ended, from the counters kept where those events
/// happen (unstarted ones included): exact whenever no worker is running.
fn alive(shared: &Shared) -> usize {
    let finished: u64 = shared
        .all_ms()
        .map(|r| r.counters.finished.load(Ordering::SeqCst))
        .sum();
    let spawned: u64 = shared.spawned_outside.load(Ordering::SeqCst)
        + shared
            .all_ms()
            .map(|r| r.counters.spawned.load(Ordering::SeqCst))
            .sum::<u64>();
    spawned.saturating_sub(finished) as usize
}
