//! `corun::dump`: every live coroutine of a runtime, one block each, as Go's
//! goroutine dump.
//!
//! It reads only what other threads may read, without the workers' help, so it
//! works while every worker is stuck in a hog: each worker's registry (behind its
//! uncontended lock, `registry.rs`), the map of started migratable coroutines, the
//! atomics of each coroutine's header (park state, the wait record of `wait.rs`),
//! each worker's `running` id, and the queues' lengths. A coroutine's stack use is
//! read with `mincore` while its registry is locked, so its stack cannot go back to
//! the pool meanwhile.

use crate::sched::registry::Started;
use crate::sched::shared::Shared;
use crate::sched::task::{G, PARKED};
use crate::sched::wait;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Row {
    g: G,
    worker: u32,
    /// Bytes of its stack touched (see `Row::stack_line`), and the stack's size.
    stack_used: usize,
    stack_size: usize,
}

fn row(e: &Started) -> Row {
    let (lo, hi) = e.stack;
    Row {
        g: e.g.clone(),
        worker: e.g.header.home.load(Ordering::Relaxed),
        stack_used: crate::coroutine::stack::high_water(e.stack),
        stack_size: hi - lo,
    }
}

/// The dump of `shared` (see the module docs).
pub(crate) fn dump(shared: &Shared) -> String {
    let mut rows: Vec<Row> = Vec::new();
    for r in shared.all_ms() {
        rows.extend(r.registry.lock().iter().map(row));
    }
    rows.extend(shared.migratable.lock().values().map(row));
    rows.sort_by_key(|r| r.g.header.id);
    // By M index (dedicated slots included).
    let running: Vec<u64> = shared
        .remotes
        .iter()
        .map(|r| r.counters.running.load(Ordering::Relaxed))
        .collect();
    let dedicated = shared.dedicated.live();
    let global = shared.inject.len();
    let locals: Vec<usize> = shared.allp.iter().map(|p| p.steal.len()).collect();
    let queued: usize = global + locals.iter().sum::<usize>();

    let now = wait::coarse_ms();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "corun: {} workers, {} coroutines started and alive, {} waiting in run queues (global {}, local {:?}){}",
        shared.ms_started(),
        rows.len(),
        queued,
        global,
        locals,
        if dedicated > 0 {
            format!(", {dedicated} on dedicated threads")
        } else {
            String::new()
        }
    );
    for r in &rows {
        let h = &r.g.header;
        let _ = write!(out, "\ncoroutine {}", h.id);
        if let Some(n) = h.name() {
            let _ = write!(out, " \"{n}\"");
        }
        let on_cpu = running.get(r.worker as usize) == Some(&h.id);
        let state = if h.state.load(Ordering::Acquire) == PARKED {
            let i = wait::decode(h.wait.load(Ordering::Relaxed), now);
            let mut s = format!("{}, {}", i.reason.name(), fmt_dur(i.waited));
            match i.left {
                Some(left) => {
                    let _ = write!(s, ", until +{}", fmt_dur(left));
                }
                None if i.has_deadline => s.push_str(", until +4h or more"),
                None => {}
            }
            s
        } else if on_cpu {
            "running".to_owned()
        } else {
            "runnable".to_owned()
        };
        let _ = writeln!(out, " [{state}]:");
        // Without stack statistics a pooled stack keeps the pages earlier owners
        // touched: what is resident is an upper bound of this coroutine's use.
        let measured = if shared.stack_stats {
            "used"
        } else {
            "resident"
        };
        let on = if r.worker as usize >= shared.dedicated.base {
            "dedicated thread".to_owned()
        } else {
            format!("worker {}", r.worker)
        };
        let _ = writeln!(
            out,
            "\t{on}, stack {} {} of {}{}",
            fmt_bytes(r.stack_used),
            measured,
            fmt_bytes(r.stack_size),
            if h.migratable { ", migratable" } else { "" }
        );
    }
    out
}

fn fmt_dur(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 120_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{} minutes", ms / 60_000)
    }
}

fn fmt_bytes(b: usize) -> String {
    if b % 1024 == 0 || b >= 1024 {
        format!("{} KiB", b.div_ceil(1024))
    } else {
        format!("{b} B")
    }
}

/// The calling coroutine's stack high-water mark, if it runs on a runtime with stack
/// statistics on.
pub(crate) fn current_stack_high_water() -> Option<usize> {
    let body = crate::sched::context::with_worker(|w| {
        if !w.shared.stack_stats {
            return None;
        }
        // SAFETY: `current` is only set while its coroutine runs on this thread; we are
        // that coroutine (or code it runs), so its task is alive.
        let h = &unsafe { w.current.get()?.as_ref() }.header;
        if h.migratable {
            w.shared.migratable.lock().get(&h.id).map(|e| e.stack)
        } else {
            let reg = w.shared.remotes[w.index].registry.lock();
            reg.get(h.slot.load(Ordering::Relaxed) as usize)
                .map(|e| e.stack)
        }
    })??;
    Some(crate::coroutine::stack::high_water(body))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn io_waits_are_named() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let h = crate::Builder::new()
            .name("io")
            .spawn_on(rt.handle(), move || {
                while !d2.load(Ordering::Acquire) {
                    crate::sched::park::park(
                        crate::sched::park::Reason::Io,
                        None,
                        crate::sched::park::Cancel::Point,
                    );
                }
            })
            .unwrap();
        let t = std::time::Instant::now();
        while !rt.dump().contains("\"io\" [IO wait, ") {
            assert!(t.elapsed().as_secs() < 20, "{}", rt.dump());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        done.store(true, Ordering::Release);
        h.coroutine().unpark();
        h.join().unwrap();
    }
}
