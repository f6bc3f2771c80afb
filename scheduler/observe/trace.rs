//! `CORUN_TRACE=<file>`: the scheduler trace, written as Chrome trace-event JSON
//! (Perfetto and `chrome://tracing` open it as one track per worker thread). The
//! core records the events (`sched/trace.rs`); this module opens the file when the
//! runtime is built, and writes it once: when a bound is reached (on a thread of
//! its own, the program going on), when the runtime is dropped, or when the process
//! exits (`atexit`: the default runtime is never dropped); `trace_json.rs` writes
//! the JSON. How to read one: `docs/trace.md`.

use crate::sched::trace::{Stop, Trace};
use crate::sched::warnings::{Route, Warnings};
use std::io::{self, Write};
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
    dedicated_base: usize,
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
        dedicated_base,
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
    let name = format!("{}-trace", t.name);
    let spawned = crate::sched::template::spawn(name, move || write_reporting(&mine));
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
        // catches panics). It takes the traces' locks, may call the runtime's
        // warnings callback (user code), and writes a file: no async-signal
        // context is involved (`atexit` runs at a normal `exit`), and a writer
        // stuck on a full pipe delays exit, nothing worse.
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
    let line = match super::trace_json::write(t) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_paths() {
        assert_eq!(
            numbered(Path::new("/tmp/t.json"), 2),
            PathBuf::from("/tmp/t.2.json")
        );
        assert_eq!(numbered(Path::new("t"), 3), PathBuf::from("t.3"));
    }
}
