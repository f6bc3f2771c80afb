//! The runtime's monitor thread: today it prints the schedtrace; Go's sysmon
//! (hand-off of a stuck worker's queue) will grow here.
//!
//! Started only when asked (`CORUN_SCHEDTRACE=<ms>` or
//! [`RuntimeBuilder::schedtrace`](crate::RuntimeBuilder::schedtrace)); dropping the
//! `Runtime` stops and joins it before the workers. It only reads what any thread may
//! read of the runtime (atomics, the queues' lengths), so a worker stuck in a hog
//! does not stop it.

use crate::loom::sync::{Condvar, Mutex};
use crate::sched::shared::Shared;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A running monitor thread.
pub(crate) struct Schedtrace {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Schedtrace {
    /// Starts the thread, printing a schedtrace line every `schedtrace`.
    pub(crate) fn start(
        shared: Arc<Shared>,
        name: &str,
        schedtrace: Duration,
    ) -> io::Result<Schedtrace> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (sh, st) = (shared.clone(), stop.clone());
        shared
            .monitor
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{name}-monitor");
        let thread = crate::sched::template::spawn(name, move || run(&sh, &st, schedtrace));
        match thread {
            Ok(t) => Ok(Schedtrace {
                stop,
                thread: Some(t),
                shared,
            }),
            Err(e) => {
                shared
                    .monitor
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

impl Drop for Schedtrace {
    /// Stops the thread and waits for it.
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared
            .monitor
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

fn run(shared: &Shared, stop: &(Mutex<bool>, Condvar), every: Duration) {
    let every = every.max(Duration::from_millis(1));
    let mut next = Instant::now() + every;
    let mut stopped = stop.0.lock();
    loop {
        // Checked before every wait: a stop may come before this thread first runs.
        if *stopped {
            return;
        }
        let now = Instant::now();
        if now < next {
            stop.1.wait_timeout(&mut stopped, next - now);
            continue;
        }
        next += every;
        if next < now {
            next = now + every; // fell behind (a suspended process): do not burst
        }
        let line = schedtrace_line(shared);
        let _ = writeln!(io::stderr().lock(), "{line}");
    }
}

/// One schedtrace line, as Go's `schedtrace`:
///
/// `SCHED 1002ms: workers=2 idleprocs=1 threads=4 spinningthreads=0 runqueue=0
/// [0 3] live=12 steals=4 handoffs=0 budgetyields=0`
///
/// (one line): time since the runtime started, workers (Ps), workers asleep, the
/// runtime's threads (workers, extra threads sysmon started, sysmon), workers
/// searching for work, the global queue, each worker's
/// local queue, live coroutines, steals, queue hand-offs (sysmon's, 0 until it
/// exists), yields forced by the cooperative budget.
pub(super) fn schedtrace_line(shared: &Shared) -> String {
    let m = super::metrics::snapshot(shared);
    let (awake, searching) = shared.idle.snapshot();
    // Ps, not Ms: the extra threads sysmon starts for hand-offs count as threads.
    let workers = shared.workers;
    let mut s = format!(
        "SCHED {}ms: workers={} idleprocs={} threads={} spinningthreads={} runqueue={} [",
        shared.epoch.elapsed().as_millis(),
        workers,
        workers.saturating_sub(awake),
        m.threads,
        searching,
        m.global_queue,
    );
    for (i, w) in m.workers.iter().take(workers).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{}", w.local_queue);
    }
    let _ = write!(
        s,
        "] live={} steals={} handoffs={} budgetyields={}",
        m.live,
        m.steals(),
        m.handoffs,
        m.budget_yields()
    );
    s
}
