//! The scheduler trace as Chrome trace-event JSON, written by hand (no serde in the
//! library): metadata naming each track, the events of every track in time order,
//! arrows (flow events) from each spawn and wake to the run that followed, and
//! `otherData` saying why the recording stopped. `docs/trace.md` describes it.

use crate::sched::trace::{self as tr, Buf, Event, Kind, Stop, Trace};
use crate::sched::wait::Reason;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

/// Writes the trace (it must be stopped) to its file, once: the number of events,
/// or `None` if it was written already.
pub(super) fn write(t: &Trace) -> io::Result<Option<usize>> {
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
            i if i >= t.dedicated_base => format!("dedicated thread {}", i - t.dedicated_base),
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
    }
}
