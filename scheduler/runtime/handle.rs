//! A built [`Runtime`]: running code on it, its [`Handle`], the default runtime,
//! the panic hook, and shutdown (`Drop`).

use super::join::JoinHandle;
use super::spawn::Builder;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Mutex;
use crate::observe::metrics::Metrics;
use crate::observe::schedtrace::Schedtrace;
use crate::sched::context;
use crate::sched::shared::Shared;
use crate::sched::task::QUEUED;
use std::sync::{Arc, OnceLock};
use std::thread;

/// A corun runtime: worker threads running coroutines.
///
/// Dropping it unwinds every coroutine still alive (youngest first; their `join()`
/// returns `Err` with a [`crate::Cancelled`] payload), drops those never started,
/// joins its threads and unmaps its stacks.
pub struct Runtime {
    pub(super) handle: Handle,
    pub(super) threads: Mutex<Vec<thread::JoinHandle<()>>>,
    pub(super) monitor: Mutex<Option<Schedtrace>>,
}

/// A cloneable reference to a runtime, to spawn on it from anywhere.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime {
    /// Its handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns `f` as a coroutine on this runtime.
    ///
    /// # Panics
    /// If the runtime is shutting down.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// Runs `f` as a coroutine and blocks the calling thread until it ends; its panic
    /// is raised again here.
    ///
    /// # Panics
    /// If called from inside one of this runtime's own coroutines (it would block a
    /// worker on itself): spawn and `join` instead.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // A coroutine runs on a worker of its own runtime.
        let inside =
            context::with_worker(|w| w.owned_by(&self.handle.shared) && w.current.get().is_some());
        if inside == Some(true) {
            panic!("Runtime::block_on called from inside one of its own coroutines: use corun::spawn(..).join() instead");
        }
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    /// A snapshot of its counters; see [`Metrics`].
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).build().unwrap();
    /// rt.block_on(|| corun::yield_now());
    /// assert!(rt.metrics().switches() >= 2);
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.handle.metrics()
    }

    /// Every live coroutine of the runtime, one block each as in Go's goroutine
    /// dump: id, name, state (running, runnable, or what it waits on and for how
    /// long), its worker, and its stack use; see [`crate::dump`].
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).build().unwrap();
    /// let (tx, rx) = corun::chan::bounded::<()>(0);
    /// let h = rt.spawn(move || rx.recv());
    /// while !rt.dump().contains("[chan receive") {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// drop(tx);
    /// h.join().unwrap().unwrap_err();
    /// ```
    pub fn dump(&self) -> String {
        self.handle.dump()
    }
}

impl Handle {
    /// Spawns `f` as a coroutine on this runtime; see [`Runtime::spawn`].
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match Builder::new().spawn_on(self, f) {
            Ok(h) => h,
            Err(e) => panic!("corun::Handle::spawn failed: {e}"),
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// A snapshot of the runtime's counters; see [`Runtime::metrics`].
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(3).build().unwrap();
    /// assert_eq!(rt.handle().metrics().workers.len(), 3);
    /// ```
    pub fn metrics(&self) -> Metrics {
        crate::observe::metrics::snapshot(&self.shared)
    }

    /// The runtime's coroutines; see [`Runtime::dump`].
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.handle().dump().starts_with("corun: 1 workers, 0 coroutines"));
    /// ```
    pub fn dump(&self) -> String {
        crate::observe::dump::dump(&self.shared)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if context::with_worker(|w| w.owned_by(&self.handle.shared)) == Some(true) {
            // Joining our own threads from one of them would never return.
            eprintln!(
                "corun: a Runtime was dropped from inside one of its own coroutines; leaking it"
            );
            return;
        }
        drop(self.monitor.lock().take());
        let s = &self.handle.shared;
        s.shutdown.store(true, Ordering::SeqCst);
        s.inject.close();
        for i in 0..s.remotes.len() {
            s.unpark_worker(i);
        }
        s.sysmon_sleeper
            .unpark(|| unreachable!("sysmon never polls"));
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        // Sysmon has ended (joined above), so no extra M starts after this.
        let spares = std::mem::take(&mut *s.spare_threads.lock());
        for t in spares {
            let _ = t.join();
        }
        // No dedicated thread starts after this either (`dedicated::spawn`).
        for t in s.dedicated.take_threads() {
            let _ = t.join();
        }
        if let Some(t) = &s.trace {
            // Every M and sysmon has stopped: the trace is complete.
            crate::observe::trace::finish(t, crate::sched::trace::Stop::Dropped);
        }
        // SAFETY: every M has been joined above: no thread holds a P any more.
        for g in unsafe { s.take_queued_unstarted() } {
            g.abandon(Box::new(crate::Cancelled));
        }
        // Timers of migratable coroutines may still hold finished tasks: free them
        // here, not in whatever thread drops the last reference to the runtime.
        let timers = std::mem::take(&mut *s.portable_timers.lock());
        drop(timers);
        // What a client runs for this runtime (the tokio bridge's runtime) stops
        // after the coroutines that used it have unwound.
        if let Some(a) = s.attached.get() {
            a.shutdown();
        }
        // Normally every coroutine has ended by now. Under `panic = "abort"` the
        // started ones could not be unwound: they are leaked, stacks and values.
        let left = s.take_alive();
        if !left.is_empty() {
            for g in &left {
                let h = &g.header;
                // SAFETY: every thread that ran this runtime's coroutines has been
                // joined above, so none touches a fiber again: this thread owns them.
                std::mem::forget(unsafe { h.fiber() }.take());
                // QUEUED for good: a later `unpark` does nothing.
                h.state.store(QUEUED, Ordering::SeqCst);
                g.abandon(Box::new(crate::Cancelled));
            }
            // A waker that moved one of them from PARKED to QUEUED before the store
            // above may still be about to reach the shared state: keep it forever.
            std::mem::forget(s.clone());
        }
    }
}

static DEFAULT: OnceLock<Runtime> = OnceLock::new();

/// The default runtime, started on first use with the default settings.
pub(crate) fn default_handle() -> &'static Handle {
    &DEFAULT
        .get_or_init(|| match Runtime::new() {
            Ok(rt) => rt,
            Err(e) => panic!("corun could not start its default runtime: {e}"),
        })
        .handle
}

/// The caller's runtime (its coroutine's, or its worker's), else the default one.
pub(crate) fn current_or_default() -> Handle {
    // A coroutine runs on a worker of its own runtime, so the worker names it.
    if let Some(shared) = context::with_worker(|w| w.shared.clone()) {
        return Handle { shared };
    }
    default_handle().clone()
}

/// Names the coroutine in panic messages (`coroutine 'name' (#id) panicked (on ...):`), then
/// chains to the hook installed before.
pub(super) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Names the coroutine, then chains: to the application's hook if it
            // installed one before, else to std's, which prints the message, the
            // location and, with RUST_BACKTRACE, the backtrace of the coroutine's
            // own stack. (A hook installed later replaces this one: it can name the
            // coroutine with `corun::current()`.)
            if let Some(label) = context::with_current(|t| t.header.label()) {
                let worker = thread::current().name().unwrap_or("?").to_owned();
                eprintln!("coroutine {label} panicked (on {worker}):");
            }
            prev(info)
        }));
    });
}
