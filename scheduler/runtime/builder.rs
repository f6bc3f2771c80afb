//! [`RuntimeBuilder`]: building a [`Runtime`] (see `handle.rs` for the rest of it).

use super::handle::{install_panic_hook, Handle, Runtime};
use crate::coroutine::stack::StackPool;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use crate::loom::sync::Mutex;
use crate::observe::schedtrace::Schedtrace;
use crate::sched::deadlock::Deadlock;
use crate::sched::dedicated::Dedicated;
use crate::sched::idle::Idle;
use crate::sched::inject::Inject;
use crate::sched::p::P;
use crate::sched::shared::{Observer, Remote, Shared};
use crate::sched::template;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Default usable stack size of a coroutine: 256 KiB of address space, of which only
/// the pages a coroutine touches cost memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Coroutines that may run on threads of their own at once, by default.
const DEFAULT_DEDICATED_THREADS: usize = 16;

/// Configures a [`Runtime`].
///
/// ```
/// let rt = corun::Runtime::builder().workers(2).stack_size(64 * 1024).build().unwrap();
/// assert_eq!(rt.block_on(|| 1 + 1), 2);
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    extra_threads: Option<usize>,
    dedicated_threads: usize,
    deadlock: Option<Deadlock>,
    stack_size: usize,
    name: String,
    schedtrace: Option<Duration>,
    stack_stats: Option<bool>,
    warnings: crate::Warnings,
    warn_after: Duration,
    trace: Option<std::path::PathBuf>,
    trace_limit: Option<(Duration, usize)>,
}

impl RuntimeBuilder {
    /// Number of workers (Ms, each with its P). Default: `CORUN_WORKERS` if set,
    /// else the number of CPUs.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// The most threads sysmon may add to the workers, to run the portable work of
    /// workers stuck in a CPU hog or a blocking call (see `docs/architecture.md`).
    /// Default: as many as the workers. 0 turns hand-off to new threads off (an
    /// idle worker still takes a stuck worker's P).
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).extra_threads(1).build().unwrap();
    /// // The worker is stuck in a blocking call; sysmon hands its P to a new thread,
    /// // which runs the coroutine spawned meanwhile.
    /// let stuck = rt.spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
    /// std::thread::sleep(std::time::Duration::from_millis(20));
    /// assert_eq!(rt.block_on(|| 6 * 7), 42);
    /// stuck.join().unwrap();
    /// assert!(rt.metrics().handoffs >= 1);
    /// ```
    pub fn extra_threads(mut self, n: usize) -> Self {
        self.extra_threads = Some(n);
        self
    }

    /// The most coroutines that may run on threads of their own at once
    /// ([`Builder::dedicated_thread`](crate::Builder::dedicated_thread)). Default: 16.
    /// Each costs an epoll instance and an eventfd from the start, and a thread
    /// while one runs; a spawn past the limit fails with an error saying so.
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).dedicated_threads(1).build().unwrap();
    /// let h = rt.block_on(|| corun::Builder::new().dedicated_thread().spawn(|| 1).unwrap());
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn dedicated_threads(mut self, n: usize) -> Self {
        self.dedicated_threads = n;
        self
    }

    /// What to do when every coroutine is provably asleep for good (Go's "all
    /// goroutines are asleep - deadlock!"): see [`Deadlock`]. Default: the
    /// `CORUN_DEADLOCK` variable (`exit`, `warn`, `off`), else `Exit`.
    ///
    /// ```
    /// use corun::Deadlock;
    /// let rt = corun::Runtime::builder().deadlock(Deadlock::Off).build().unwrap();
    /// assert_eq!(rt.block_on(|| 1), 1);
    /// ```
    pub fn deadlock(mut self, mode: Deadlock) -> Self {
        self.deadlock = Some(mode);
        self
    }

    /// Where warnings go when a coroutine holds its worker (see [`crate::Warnings`]):
    /// stderr (the default), nowhere, or a callback. At most one a second is given.
    pub fn warnings(mut self, to: crate::Warnings) -> Self {
        self.warnings = to;
        self
    }

    /// How long a coroutine must have held its worker without a switch before a
    /// warning is given (default 15 ms: sysmon asks it to yield at 10 ms and waits
    /// 5 ms; a shorter threshold has no effect). The events are counted in
    /// [`crate::Metrics`] either way.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = corun::Runtime::builder().warn_after(Duration::from_millis(100)).build().unwrap();
    /// assert_eq!(rt.metrics().stalls_computing, 0);
    /// ```
    pub fn warn_after(mut self, held: Duration) -> Self {
        self.warn_after = held;
        self
    }

    /// Default stack size of its coroutines, in bytes (rounded up to pages).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Prefix of its worker threads' names (default `corun`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Prints one line of scheduler state to stderr every `every`, as Go's
    /// `GODEBUG=schedtrace`, from a monitor thread of the runtime; `Duration::ZERO`
    /// turns it off. Default: `CORUN_SCHEDTRACE=<ms>` if set, else off.
    ///
    /// A line reads `SCHED 1002ms: workers=2 idleprocs=1 threads=3
    /// spinningthreads=0 runqueue=0 [0 3] live=12 steals=4 handoffs=0
    /// budgetyields=0`: time since the runtime started, workers, workers asleep,
    /// threads of the runtime, workers searching for work, the global queue, each
    /// worker's local queue, live coroutines, steals, run-queue hand-offs, yields
    /// forced by the cooperative budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = corun::Runtime::builder()
    ///     .workers(1)
    ///     .schedtrace(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.metrics().threads, 3); // the worker, sysmon and the monitor
    /// ```
    pub fn schedtrace(mut self, every: Duration) -> Self {
        self.schedtrace = Some(every);
        self
    }

    /// Measures each coroutine's stack use (its high-water mark), shown by
    /// [`Runtime::dump`] and [`crate::stack_high_water`], and the deepest of the
    /// finished ones in [`crate::Metrics::stack_high_water_max`]. Default:
    /// `CORUN_STACK_STATS=1` if set, else off.
    ///
    /// It costs one `madvise` when a coroutine starts (its pooled stack's pages are
    /// handed back, so it is measured from zero; they fault in again as it grows)
    /// and one `mincore` when it ends. Off, it costs nothing.
    ///
    /// ```
    /// let rt = corun::Runtime::builder().workers(1).stack_stats(true).build().unwrap();
    /// let used = rt.block_on(|| {
    ///     let buf = std::hint::black_box([1u8; 64 * 1024]);
    ///     std::hint::black_box(&buf);
    ///     corun::stack_high_water().unwrap()
    /// });
    /// assert!(used >= 64 * 1024);
    /// ```
    pub fn stack_stats(mut self, on: bool) -> Self {
        self.stack_stats = Some(on);
        self
    }

    /// Records a trace of the scheduler into the file at `path`, as Chrome
    /// trace-event JSON that Perfetto (ui.perfetto.dev) and `chrome://tracing` open
    /// with one track per worker: which coroutine ran when on each worker, how each
    /// run ended (the park reason), spawns and where they went, steals, wakes across
    /// workers, timers fired late, sysmon's hand-offs. `docs/trace.md` says how to
    /// read one. Default: `CORUN_TRACE=<file>` if set (a second runtime of the
    /// process taking it from there writes `<stem>.2.<ext>`, and so on), else none.
    ///
    /// It records for a bounded time and number of events ([`Self::trace_limit`]),
    /// then writes the file, as it does when the runtime is dropped or the process
    /// exits first; the file is complete JSON either way. If it cannot be created,
    /// the runtime runs without a trace and says so through its
    /// [warnings](Self::warnings) route. Off, the trace costs one branch per
    /// coroutine switch.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("corun-doc-{}.json", std::process::id()));
    /// let rt = corun::Runtime::builder().workers(1).trace(&path).build().unwrap();
    /// rt.block_on(|| corun::yield_now());
    /// drop(rt);
    /// let json = std::fs::read_to_string(&path).unwrap();
    /// assert!(json.contains(r#""ph":"X""#));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// Bounds of the scheduler trace ([`Self::trace`]): it records for at most
    /// `time` from the runtime's start and at most `events` events (32 bytes each
    /// in memory, 120 to 220 in the file), then writes the file, marked truncated.
    /// Default: `CORUN_TRACE_LIMIT=<seconds>[,<events>]` if set, else 10 s and
    /// 1,000,000 events.
    pub fn trace_limit(mut self, time: Duration, events: usize) -> Self {
        self.trace_limit = Some((time, events));
        self
    }

    /// Starts the workers.
    ///
    /// The first runtime of a process raises the soft limit on open descriptors
    /// (`RLIMIT_NOFILE`) to the hard one, as Go does, so that a server holding
    /// thousands of connections does not stop at a soft default of 1024. Child
    /// processes inherit the raised limit (one that uses `select(2)` may need to lower
    /// it again).
    ///
    /// Errors: 0 workers, a `CORUN_WORKERS` or `CORUN_SCHEDTRACE` that is not a
    /// number, a `CORUN_TRACE_LIMIT` that is not `<seconds>[,<events>]`, a stack
    /// size below two pages, or a thread the OS refused.
    pub fn build(self) -> io::Result<Runtime> {
        let workers = match self.workers {
            Some(n) => n,
            None => workers_from_env()?,
        };
        let schedtrace = match self.schedtrace {
            Some(d) => d,
            None => schedtrace_from_env()?,
        };
        let trace = crate::observe::trace::request(self.trace.clone(), self.trace_limit)?;
        let stack_stats = self.stack_stats.unwrap_or_else(|| {
            std::env::var("CORUN_STACK_STATS").is_ok_and(|v| !matches!(v.trim(), "" | "0"))
        });
        if workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a corun runtime needs at least 1 worker, got 0",
            ));
        }
        let stacks = StackPool::new(self.stack_size)?;
        crate::netpoll::raise_fd_limit();
        crate::coroutine::overflow::install();
        crate::coroutine::overflow::set_hint(&OVERFLOW_FIX);
        install_panic_hook();
        let extra = self.extra_threads.unwrap_or(workers);
        crate::sched::handoff::init_barriers();
        crate::sched::wait::refresh_stamp();
        let all = workers + extra + self.dedicated_threads;
        let mut pollers = Vec::with_capacity(all);
        let mut remotes = Vec::with_capacity(all);
        for i in 0..all {
            let (poller, io) = crate::netpoll::new(i >= workers + extra).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("corun could not create a worker's netpoller (an epoll and an eventfd): {e}; if descriptors ran out, raise the limit (ulimit -n)"),
                )
            })?;
            pollers.push(poller);
            remotes.push(Remote::new(io));
        }
        let epoch = std::time::Instant::now();
        let trace = trace.and_then(|req| {
            let base = workers + extra;
            let w = &self.warnings;
            crate::observe::trace::open(req, epoch, &self.name, workers, base, all, w)
        });
        let shared = Arc::new(Shared {
            observer: Observer {
                dump: crate::observe::dump::dump,
                sigquit_generation: crate::observe::sigquit::generation,
            },
            remotes: remotes.into_boxed_slice(),
            allp: (0..workers).map(P::new).collect(),
            inject: Inject::new(),
            idle: Idle::new(workers),
            stacks,
            shutdown: AtomicBool::new(false),
            spawned_outside: AtomicU64::new(0),
            migratable: Mutex::new(Default::default()),
            ps: crate::sched::handoff::Ps::new(workers, workers + extra),
            handoffs: AtomicU64::new(0),
            ms_started: AtomicUsize::new(workers),
            dedicated: Dedicated::new(workers + extra, pollers.split_off(workers + extra)),
            spares: Mutex::new(pollers.split_off(workers).into_iter().map(Some).collect()),
            spare_threads: Mutex::new(Vec::new()),
            portable_timers: Mutex::new(Default::default()),
            portable_timer_count: AtomicUsize::new(0),
            sysmon_sleeper: crate::sched::sleeper::Sleeper::new(),
            name: self.name.clone(),
            workers,
            parked_untimed: AtomicUsize::new(0),
            deadlock: self.deadlock.unwrap_or_else(Deadlock::from_env),
            warnings: self.warnings,
            warn_after: self.warn_after,
            stalls: Default::default(),
            trace,
            epoch,
            stack_stats,
            stack_high_water_max: crate::loom::sync::atomic::AtomicUsize::new(0),
            monitor: AtomicBool::new(false),
            attached: OnceLock::new(),
        });
        let mut threads = Vec::with_capacity(workers);
        for (i, poller) in pollers.into_iter().enumerate() {
            let sh = shared.clone();
            let name = format!("{}-worker-{i}", self.name);
            let t = template::spawn(name, move || crate::sched::worker::run(sh, i, poller));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let rt = Runtime {
                        handle: Handle { shared },
                        threads: Mutex::new(threads),
                        monitor: Mutex::new(None),
                    };
                    drop(rt);
                    return Err(e);
                }
            }
        }
        crate::sched::deadlock::register(&shared);
        crate::observe::sigquit::install_from_env();
        let sh = shared.clone();
        let name = format!("{}-sysmon", self.name);
        let sysmon = template::spawn(name, move || crate::sched::sysmon::run(sh));
        match sysmon {
            Ok(t) => threads.push(t),
            Err(e) => {
                drop(Runtime {
                    handle: Handle { shared },
                    threads: Mutex::new(threads),
                    monitor: Mutex::new(None),
                });
                return Err(e);
            }
        }
        let rt = Runtime {
            handle: Handle {
                shared: shared.clone(),
            },
            threads: Mutex::new(threads),
            monitor: Mutex::new(None),
        };
        if !schedtrace.is_zero() {
            let m = Schedtrace::start(shared, &self.name, schedtrace)?;
            *rt.monitor.lock() = Some(m);
        }
        Ok(rt)
    }
}

fn schedtrace_from_env() -> io::Result<Duration> {
    match std::env::var("CORUN_SCHEDTRACE") {
        Ok(v) => v.trim().parse::<u64>().map(Duration::from_millis).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CORUN_SCHEDTRACE={v:?} is not a number of milliseconds: set it to e.g. 1000, or unset it"),
            )
        }),
        Err(_) => Ok(Duration::ZERO),
    }
}

/// What the overflow report adds (`coroutine/overflow.rs` prints it as is).
static OVERFLOW_FIX: &[u8] = b"  give it a bigger stack: corun::Builder::stack_size(bytes) \
for one coroutine, corun::RuntimeBuilder::stack_size(bytes) for every coroutine of a \
runtime (default 256 KiB), corun::Generator::with_stack_size for a generator; \
CORUN_STACK_STATS=1 shows how much of its stack a coroutine used \
(corun::stack_high_water, corun::dump)\n";

fn workers_from_env() -> io::Result<usize> {
    match std::env::var("CORUN_WORKERS") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CORUN_WORKERS={v:?} is not a positive number of workers: set it to e.g. 4, or unset it to use every CPU"),
            )
        }),
        Err(_) => Ok(num_cpus::get().max(1)),
    }
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: None,
            extra_threads: None,
            dedicated_threads: DEFAULT_DEDICATED_THREADS,
            deadlock: None,
            warnings: crate::Warnings::Stderr,
            warn_after: Duration::ZERO,
            stack_size: DEFAULT_STACK_SIZE,
            name: "corun".into(),
            schedtrace: None,
            stack_stats: None,
            trace: None,
            trace_limit: None,
        }
    }

    /// A runtime with the defaults.
    pub fn new() -> io::Result<Runtime> {
        Self::builder().build()
    }
}
