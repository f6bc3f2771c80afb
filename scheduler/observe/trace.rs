//! `CORUN_TRACE=<file>`: the scheduler trace, written as Chrome trace-event JSON
//! (Perfetto and `chrome://tracing` open it as one track per worker thread). The
//! core records the events (`sched/trace.rs`); this module opens the file when the
//! runtime is built, and writes it once: when a bound is reached (on a thread of
//! its own, the program going on), when the runtime is dropped, or when the process
//! exits (`atexit`: the default runtime is never dropped). How to read one:
//! `docs/trace.md`.

use crate::sched::trace::{self as tr, Buf, Event, Kind, Stop, Trace};
use crate::sched::wait::Reason;
use crate::sched::warnings::{Route, Warnings};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a trace records by default, from the runtime's start.
pub(crate) const DEFAULT_LIMIT: Duration = Duration::from_secs(10);
/// How many events a trace holds at most by default (32 bytes each in memory,
/// 120 to 220 in the file, arrows included).
pub(crate) const DEFAULT_EVENTS: usize = 1_000_000;

/// What the builder was asked for, before the file is opened.
pub(crate) struct Request {
    pub(crate) path: PathBuf,
    /// Where the path came from, for messages (`CORUN_TRACE` or the builder).
    pub(crate) from_env: bool,
    pub(crate) limit: Duration,
    pub(crate) max_events: usize,
}

/// The trace the builder was asked for: its own setting, else `CORUN_TRACE` (an
/// empty value is none). A second runtime of the process that takes its path from
/// `CORUN_TRACE` writes `<stem>.2.<ext>`, the third `.3`, and so on.
pub(crate) fn request(
    path: Option<PathBuf>,
    limit: Option<(Duration, usize)>,
) -> io::Result<Option<Request>> {
    let (limit, max_events) = match limit {
        Some(l) => l,
        None => limit_from_env()?,
    };
    if let Some(path) = path {
        return Ok(Some(Request {
            path,
            from_env: false,
            limit,
            max_events,
        }));
    }
    let Some(v) = std::env::var_os("CORUN_TRACE").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    static TAKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = PathBuf::from(v);
    Ok(Some(Request {
        path: if n == 0 { path } else { numbered(&path, n + 1) },
        from_env: true,
        limit,
        max_events,
    }))
}

/// `dir/stem.N.ext`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    path.with_file_name(name)
}

/// `CORUN_TRACE_LIMIT=<seconds>[,<events>]`, else the defaults.
fn limit_from_env() -> io::Result<(Duration, usize)> {
    let Ok(v) = std::env::var("CORUN_TRACE_LIMIT") else {
        return Ok((DEFAULT_LIMIT, DEFAULT_EVENTS));
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CORUN_TRACE_LIMIT={v:?} is not <seconds>[,<events>]: set it to e.g. 30 or 30,2000000, or unset it for 10 s and 1000000 events"),
        )
    };
    let mut parts = v.trim().splitn(2, ',');
    let secs: f64 = parts
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let time = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    let events = match parts.next() {
        Some(e) => e.trim().parse().map_err(|_| bad())?,
        None => DEFAULT_EVENTS,
    };
    Ok((time, events))
}

/// Creates the file and the recorder; `None`, with a warning naming the path and
/// the cause, if the file cannot be created: the runtime then runs untraced.
pub(crate) fn open(
    req: Request,
    epoch: Instant,
    name: &str,
    workers: usize,
    ms: usize,
    warnings: &Warnings,
) -> Option<Arc<Trace>> {
    let file = match std::fs::File::create(&req.path) {
        Ok(f) => f,
        Err(e) => {
            let by = if req.from_env {
                "CORUN_TRACE"
            } else {
                "RuntimeBuilder::trace"
            };
            let line = format!(
                "corun: cannot create the scheduler trace file {} (from {by}): {e}; runtime '{name}' runs without a trace (give a path in a writable directory)",
                req.path.display()
            );
            Route::new(warnings.clone()).say(Instant::now(), line);
            return None;
        }
    };
    let t = Arc::new(Trace::new(
        req.path,
        file,
        epoch,
        name.to_owned(),
        workers,
        ms,
        req.limit,
        req.max_events,
        warnings.clone(),
        write_in_background,
    ));
    at_exit(&t);
    Some(t)
}

/// A bound was reached: the file is written on a thread of its own, so that no
/// worker stops for it; where no thread can be made, here.
fn write_in_background(t: &Arc<Trace>) {
    let mine = t.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{}-trace", t.name))
        .spawn(move || write_reporting(&mine));
    if spawned.is_err() {
        write_reporting(t);
    }
}

/// The runtime is dropped (its Ms have stopped), or the process exits: stops the
/// recording and writes the file, unless it was written already.
pub(crate) fn finish(t: &Arc<Trace>, why: Stop) {
    t.halt(why);
    write_reporting(t);
}

/// Traces alive, for the process's exit.
static LIVE: std::sync::Mutex<Vec<Weak<Trace>>> = std::sync::Mutex::new(Vec::new());

fn at_exit(t: &Arc<Trace>) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `write_live` is an `extern "C" fn()` that never unwinds (it
        // catches panics); it only takes std locks and writes files.
        if unsafe { libc::atexit(write_live) } != 0 {
            let _ = writeln!(
                io::stderr(),
                "corun: cannot register the scheduler trace's writer at exit: a trace of a runtime that is never dropped is written at its bound only"
            );
        }
    });
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(t));
}

/// At exit: every trace not yet written is (the default runtime's, a leaked one's).
extern "C" fn write_live() {
    let _ = std::panic::catch_unwind(|| {
        let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
        for t in live.iter().filter_map(Weak::upgrade) {
            finish(&t, Stop::Exit);
        }
    });
}

/// Writes the file if nobody has; reports a failure, and a bound reached, through
/// the runtime's warnings route.
fn write_reporting(t: &Trace) {
    let line = match write(t) {
        Ok(Some(n)) if t.stop_reason().truncated() => {
            let (what, bound) = match t.stop_reason() {
                Stop::Time => ("time", format!("{:?}", Duration::from_nanos(t.limit_ns))),
                _ => ("size", format!("{} events", t.max_events)),
            };
            format!(
                "corun: the scheduler trace of runtime '{}' reached its {what} bound ({bound}) and was written to {} ({n} events); RuntimeBuilder::trace_limit or CORUN_TRACE_LIMIT=<seconds>,<events> raises it",
                t.name,
                t.path.display()
            )
        }
        Ok(_) => return,
        Err(e) => format!(
            "corun: could not write the scheduler trace of runtime '{}' to {}: {e}",
            t.name,
            t.path.display()
        ),
    };
    Route::new(t.warnings.clone()).say(Instant::now(), line);
}

/// Writes the trace (it must be stopped) to its file, once: the number of events,
/// or `None` if it was written already.
pub(crate) fn write(t: &Trace) -> io::Result<Option<usize>> {
    let mut sink = t.sink.lock();
    let Some(file) = sink.take() else {
        return Ok(None);
    };
    // Stopped: no buffer changes again.
    let mut bufs: Vec<Buf> = t
        .bufs
        .iter()
        .map(|b| std::mem::take(&mut *b.lock()))
        .collect();
    let names: HashMap<u64, Box<str>> = bufs.iter_mut().flat_map(|b| b.names.drain(..)).collect();
    for b in bufs.iter_mut() {
        b.events.sort_by_key(|e| e.at);
    }
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 16, file),
        pid: std::process::id(),
        first: true,
        line: String::with_capacity(256),
        runs: runs_by_coroutine(&bufs),
        flows: Vec::new(),
    };
    w.out.write_all(b"{\"traceEvents\":[\n")?;
    w.meta(None, "process_name", &format!("corun runtime '{}'", t.name))?;
    let (sysmon, other) = (t.sysmon_track(), t.other_track());
    let mut n = 0;
    for (track, b) in bufs.iter_mut().enumerate() {
        if b.events.is_empty() && track >= t.workers {
            continue;
        }
        let label = match track {
            i if i == sysmon => "sysmon".to_owned(),
            i if i == other => "other threads".to_owned(),
            i if i < t.workers => format!("worker {i}"),
            i => format!("extra M {i}"),
        };
        w.meta(Some(track), "thread_name", &label)?;
        w.line.clear();
        let _ = write!(
            w.line,
            r#"{{"name":"thread_sort_index","ph":"M","pid":{},"tid":{track},"args":{{"sort_index":{track}}}}}"#,
            w.pid
        );
        w.flush_line()?;
        for e in &b.events {
            w.event(track, e, &names)?;
            n += 1;
        }
    }
    // The arrows' heads, at the slices they point to.
    for (id, (name, tid, at)) in std::mem::take(&mut w.flows).into_iter().enumerate() {
        w.line.clear();
        let _ = write!(
            w.line,
            r#"{{"name":"{name}","cat":"{name}","ph":"f","bp":"e","id":{id},"pid":{},"tid":{tid},"ts":{}}}"#,
            w.pid,
            Us(at)
        );
        w.flush_line()?;
    }
    let why = match t.stop_reason() {
        Stop::Time => "time bound",
        Stop::Size => "size bound",
        Stop::Dropped => "runtime dropped",
        Stop::Exit => "process exit",
        Stop::Running => "running",
    };
    let at = t.stopped_at.load(std::sync::atomic::Ordering::Relaxed);
    w.line.clear();
    let _ = write!(
        w.line,
        r#"{{"name":"trace stopped","cat":"trace","ph":"i","s":"g","pid":{},"tid":0,"ts":{},"args":{{"reason":"{why}"}}}}"#,
        w.pid,
        Us(at)
    );
    w.flush_line()?;
    write!(
        w.out,
        "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{{\"corun_trace\":1,\"runtime\":\"{}\",\"workers\":{},\"events\":{n},\"stopped\":\"{why}\",\"truncated\":{},\"limit_ms\":{},\"max_events\":{}}}\n}}\n",
        Esc(&t.name),
        t.workers,
        t.stop_reason().truncated(),
        t.limit_ns / 1_000_000,
        t.max_events
    )?;
    w.out.flush()?;
    w.out.get_ref().sync_all().or_else(|e| {
        // Not every file can be synced (a pipe, /dev/stdout): that is no failure.
        if e.kind() == io::ErrorKind::InvalidInput {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(Some(n))
}

struct Writer {
    out: BufWriter<std::fs::File>,
    pid: u32,
    first: bool,
    line: String,
    /// Each coroutine's run slices: (start, track), in time order.
    runs: HashMap<u64, Vec<(u64, usize)>>,
    /// Flow arrows whose tail is written: (name, track, start of the slice they
    /// point to); the index is the flow's id.
    flows: Vec<(&'static str, usize, u64)>,
}

/// Every coroutine's run slices, for the arrows from a spawn or a wake to the run
/// that followed.
fn runs_by_coroutine(bufs: &[Buf]) -> HashMap<u64, Vec<(u64, usize)>> {
    let mut runs: HashMap<u64, Vec<(u64, usize)>> = HashMap::new();
    for (track, b) in bufs.iter().enumerate() {
        for e in b.events.iter().filter(|e| e.kind == Kind::Run) {
            runs.entry(e.g).or_default().push((e.at, track));
        }
    }
    for v in runs.values_mut() {
        v.sort_unstable();
    }
    runs
}

impl Writer {
    /// Writes `line` as the next element of the array.
    fn flush_line(&mut self) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out.write_all(self.line.as_bytes())
    }

    fn meta(&mut self, tid: Option<usize>, what: &str, name: &str) -> io::Result<()> {
        self.line.clear();
        let tid = tid.map_or(String::new(), |t| format!(r#","tid":{t}"#));
        let _ = write!(
            self.line,
            r#"{{"name":"{what}","ph":"M","pid":{}{tid},"args":{{"name":"{}"}}}}"#,
            self.pid,
            Esc(name)
        );
        self.flush_line()
    }

    fn event(&mut self, tid: usize, e: &Event, names: &HashMap<u64, Box<str>>) -> io::Result<()> {
        self.line.clear();
        let l = &mut self.line;
        let (pid, ts, g) = (self.pid, Us(e.at), e.g);
        let head = |l: &mut String, name: &dyn std::fmt::Display, cat: &str, ph: &str| {
            let _ = write!(
                l,
                r#"{{"name":"{name}","cat":"{cat}","ph":"{ph}","pid":{pid},"tid":{tid},"ts":{ts}"#
            );
            if ph == "i" {
                l.push_str(r#","s":"t""#);
            }
        };
        match e.kind {
            Kind::Run => {
                match names.get(&g) {
                    Some(n) => head(l, &Esc(n), "run", "X"),
                    None => head(l, &format_args!("g{g}"), "run", "X"),
                }
                let end = match e.end & !tr::END_FIRST {
                    tr::END_YIELD => "yield".to_owned(),
                    tr::END_DONE => "done".to_owned(),
                    r => format!("park: {}", Reason::from_u8(r - tr::END_PARK).name()),
                };
                let _ = write!(l, r#","dur":{},"args":{{"g":{g},"end":"{end}""#, Us(e.dur));
                if e.end & tr::END_FIRST != 0 {
                    l.push_str(r#","started":true"#);
                }
                l.push_str("}}");
            }
            Kind::WaitP => {
                head(l, &"waiting for a P", "p", "X");
                let _ = write!(l, r#","dur":{},"args":{{}}}}"#, Us(e.dur));
            }
            Kind::Spawn => {
                head(l, &"spawn", "spawn", "i");
                let to = match e.other {
                    tr::TO_RUNNEXT => "runnext".to_owned(),
                    tr::TO_INJECTOR => "injector".to_owned(),
                    w => format!("worker {w}"),
                };
                let _ = write!(l, r#","args":{{"g":{g},"to":"{to}"}}}}"#);
            }
            Kind::Steal => {
                head(l, &"steal", "steal", "i");
                let _ = write!(l, r#","args":{{"from_p":{},"count":{}}}}}"#, e.other, e.dur);
            }
            Kind::Wake => {
                head(l, &"wake", "wake", "i");
                let _ = write!(l, r#","args":{{"g":{g},"to_worker":{}}}}}"#, e.other);
            }
            Kind::Timer => {
                let late = e.dur >= 1_000_000;
                head(l, &if late { "timer late" } else { "timer" }, "timer", "i");
                let _ = write!(l, r#","args":{{"g":{g},"late_us":{}}}}}"#, Us(e.dur));
            }
            Kind::Handoff => {
                head(l, &"handoff", "p", "i");
                let to = match e.dur {
                    u64::MAX => "free list".to_owned(),
                    m => format!("M {m}"),
                };
                let _ = write!(
                    l,
                    r#","args":{{"from_worker":{},"running_g":{g},"to":"{to}"}}}}"#,
                    e.other
                );
            }
            Kind::Preempt => {
                head(l, &"preempt request", "p", "i");
                let _ = write!(l, r#","args":{{"worker":{},"running_g":{g}}}}}"#, e.other);
            }
            Kind::Handback => {
                head(l, &"hand back P", "p", "i");
                l.push('}');
            }
        }
        self.flush_line()?;
        match e.kind {
            Kind::Spawn => self.arrow("spawn", tid, e),
            Kind::Wake => self.arrow("wake", tid, e),
            _ => Ok(()),
        }
    }

    /// An arrow (a flow event's tail) from instant `e` to the first run of its
    /// coroutine after it, if the trace has one.
    fn arrow(&mut self, name: &'static str, tid: usize, e: &Event) -> io::Result<()> {
        let Some(runs) = self.runs.get(&e.g) else {
            return Ok(());
        };
        let i = runs.partition_point(|&(at, _)| at < e.at);
        let Some(&(at, to)) = runs.get(i) else {
            return Ok(());
        };
        let id = self.flows.len();
        self.flows.push((name, to, at));
        self.line.clear();
        let _ = write!(
            self.line,
            r#"{{"name":"{name}","cat":"{name}","ph":"s","id":{id},"pid":{},"tid":{tid},"ts":{}}}"#,
            self.pid,
            Us(e.at)
        );
        self.flush_line()
    }
}

/// Nanoseconds as microseconds with three decimals (trace-event times are in µs).
struct Us(u64);

impl std::fmt::Display for Us {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A string's contents as a JSON string literal's.
struct Esc<'a>(&'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_times() {
        assert_eq!(Esc("a\"b\\c\n\u{1}é").to_string(), "a\\\"b\\\\c\\n\\u0001é");
        assert_eq!(Us(1_234_567).to_string(), "1234.567");
        assert_eq!(Us(5).to_string(), "0.005");
        assert_eq!(
            numbered(Path::new("/tmp/t.json"), 2),
            PathBuf::from("/tmp/t.2.json")
        );
        assert_eq!(numbered(Path::new("t"), 3), PathBuf::from("t.3"));
    }
}
