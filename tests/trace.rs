//! The scheduler trace (`CORUN_TRACE`, `RuntimeBuilder::trace`): the file is complete
//! Chrome trace-event JSON, accounts for every coroutine that ran and every switch,
//! one track per worker with no overlapping slices, and stays parseable when a
//! bound cuts it short.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const CHILDREN: usize = 200;

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("corun-trace-{tag}-{}.json", std::process::id()))
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the trace {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| {
        let tail: String = text
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("the trace {} is not JSON: {e}\n... {tail}", path.display())
    })
}

fn events(trace: &Value) -> &Vec<Value> {
    trace["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
}

/// The run slices: (tid, start ns, duration ns, g, started here).
fn run_slices(trace: &Value) -> Vec<(u64, u64, u64, u64, bool)> {
    let ns = |v: &Value| (v.as_f64().expect("a number") * 1000.0).round() as u64;
    events(trace)
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "run")
        .map(|e| {
            (
                e["tid"].as_u64().expect("tid"),
                ns(&e["ts"]),
                ns(&e["dur"]),
                e["args"]["g"].as_u64().expect("args.g"),
                e["args"]["started"] == true,
            )
        })
        .collect()
}

/// Checks what every trace must hold: metadata naming each worker track, run
/// slices only on worker tracks, and no two slices of one track overlapping.
fn check_tracks(trace: &Value, workers: u64) {
    let names: BTreeMap<u64, String> = events(trace)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            let tid = e["tid"].as_u64().unwrap();
            (tid, e["args"]["name"].as_str().unwrap().to_owned())
        })
        .collect();
    for w in 0..workers {
        assert_eq!(
            names.get(&w).map(String::as_str),
            Some(&*format!("worker {w}"))
        );
    }
    let mut by_tid: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for e in events(trace).iter().filter(|e| e["ph"] == "X") {
        let ns = |v: &Value| (v.as_f64().unwrap() * 1000.0).round() as u64;
        let tid = e["tid"].as_u64().unwrap();
        by_tid
            .entry(tid)
            .or_default()
            .push((ns(&e["ts"]), ns(&e["dur"])));
    }
    for (tid, slices) in by_tid.iter_mut() {
        assert!(*tid < workers, "a slice on track {tid}, not a worker's");
        slices.sort();
        for pair in slices.windows(2) {
            let ((a, da), (b, _)) = (pair[0], pair[1]);
            assert!(
                a + da <= b,
                "slices overlap on worker {tid}: {a}+{da} > {b}"
            );
        }
    }
    // Every arrow has a tail and a head, and its head is the start of a slice.
    let flows = |ph: &str| -> BTreeMap<u64, (u64, u64)> {
        events(trace)
            .iter()
            .filter(|e| e["ph"] == ph)
            .map(|e| {
                let ts = (e["ts"].as_f64().unwrap() * 1000.0).round() as u64;
                (e["id"].as_u64().unwrap(), (e["tid"].as_u64().unwrap(), ts))
            })
            .collect()
    };
    let (tails, heads) = (flows("s"), flows("f"));
    assert_eq!(
        tails.keys().collect::<Vec<_>>(),
        heads.keys().collect::<Vec<_>>()
    );
    for (tid, ts) in heads.values() {
        let starts = by_tid.get(tid).map(|s| s.iter().any(|&(a, _)| a == *ts));
        assert_eq!(starts, Some(true), "an arrow points at no slice start");
    }
}

/// The child: a runtime of 2 workers (its trace from `CORUN_TRACE`) runs 200 named
/// coroutines that yield, sleep, pass a token down a chain of channels and take a
/// lock; then prints the counters the parent checks the trace against.
#[test]
#[ignore = "helper: run in a child process by trace_accounts_for_every_coroutine"]
fn child_traced_runtime() {
    if !support::is_child("child_traced_runtime") {
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    // Spawned from this thread, through the injector, so that both workers take
    // some; joined from here too (a wake from a plain thread).
    let lock = Arc::new(corun::sync::Mutex::new(0u64));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..CHILDREN)
        .map(|_| corun::chan::bounded::<u64>(1))
        .unzip();
    let mut handles = Vec::new();
    for (i, rx) in rxs.into_iter().enumerate() {
        let tx = txs[(i + 1) % CHILDREN].clone();
        let lock = lock.clone();
        let h = corun::Builder::new()
            .name(format!("child-{i}"))
            .spawn_on(rt.handle(), move || {
                corun::yield_now();
                corun::sleep(Duration::from_millis(1 + (i % 3) as u64));
                let hops = if i == 0 { 0 } else { rx.recv().unwrap() };
                *lock.lock() += 1;
                if i != CHILDREN - 1 {
                    tx.send(hops + 1).unwrap();
                }
            })
            .unwrap();
        handles.push(h);
    }
    drop(txs);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*lock.lock(), CHILDREN as u64);
    let m = rt.metrics();
    let started: u64 = m.workers.iter().map(|w| w.started).sum();
    println!("STARTED={started} SWITCHES={}", m.switches());
    drop(rt);
    support::child_done();
}

fn counter(stdout: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    let at = stdout
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {stdout}"));
    stdout[at + key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn trace_accounts_for_every_coroutine() {
    let path = temp_path("all");
    let out = support::ChildTest::new("child_traced_runtime")
        .env("CORUN_TRACE", &path)
        .env_remove("CORUN_TRACE_LIMIT")
        .output();
    support::assert_child_done(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let trace = parse(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        trace["otherData"]["truncated"], false,
        "{}",
        trace["otherData"]
    );
    assert_eq!(trace["otherData"]["stopped"], "runtime dropped");
    check_tracks(&trace, 2);
    let slices = run_slices(&trace);
    // Every switch into a coroutine is a slice, and every coroutine that started
    // has exactly one slice marked as its first.
    assert_eq!(slices.len() as u64, counter(&stdout, "SWITCHES"));
    let firsts: Vec<u64> = slices.iter().filter(|s| s.4).map(|s| s.3).collect();
    let distinct: HashSet<u64> = firsts.iter().copied().collect();
    assert_eq!(distinct.len(), firsts.len(), "a coroutine started twice");
    assert_eq!(firsts.len() as u64, counter(&stdout, "STARTED"));
    let ran: HashSet<u64> = slices.iter().map(|s| s.3).collect();
    assert_eq!(
        ran, distinct,
        "a coroutine ran with no first slice, or the reverse"
    );
    // Each named child is in the trace by name, and parked on its channel at least
    // once (the token goes round the ring in order).
    let named: HashSet<&str> = events(&trace)
        .iter()
        .filter(|e| e["cat"] == "run")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for i in 0..CHILDREN {
        assert!(
            named.contains(&*format!("child-{i}")),
            "child-{i} is not in the trace"
        );
    }
    let ends: HashSet<&str> = events(&trace)
        .iter()
        .filter(|e| e["cat"] == "run")
        .filter_map(|e| e["args"]["end"].as_str())
        .collect();
    for end in ["yield", "done", "park: sleep", "park: chan receive"] {
        assert!(ends.contains(end), "no slice ended with {end:?}: {ends:?}");
    }
    let kinds: HashSet<&str> = events(&trace)
        .iter()
        .filter(|e| e["ph"] == "i")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for k in ["spawn", "trace stopped"] {
        assert!(kinds.contains(k), "no {k:?} event: {kinds:?}");
    }
    // Each spawn points at the coroutine's first run.
    let arrows = events(&trace)
        .iter()
        .filter(|e| e["ph"] == "s" && e["name"] == "spawn");
    assert_eq!(arrows.count(), CHILDREN);
    assert!(
        kinds.contains("timer") || kinds.contains("timer late"),
        "{kinds:?}"
    );
}

/// The child: a runtime whose trace holds at most 500 events runs far more.
#[test]
#[ignore = "helper: run in a child process by the_size_bound_truncates_a_parseable_trace"]
fn child_small_trace() {
    if !support::is_child("child_small_trace") {
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| {
                corun::spawn(|| {
                    for _ in 0..20 {
                        corun::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    drop(rt);
    support::child_done();
}

#[test]
fn the_size_bound_truncates_a_parseable_trace() {
    let path = temp_path("small");
    let out = support::ChildTest::new("child_small_trace")
        .env("CORUN_TRACE", &path)
        .env("CORUN_TRACE_LIMIT", "60,500")
        .output();
    support::assert_child_done(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reached its size bound (500 events)"),
        "{stderr}"
    );
    let trace = parse(&path);
    std::fs::remove_file(&path).unwrap();
    let other = &trace["otherData"];
    assert_eq!(other["truncated"], true, "{other}");
    assert_eq!(other["stopped"], "size bound", "{other}");
    let n = other["events"].as_u64().unwrap();
    assert!(n > 0 && n <= 500, "{other}");
    check_tracks(&trace, 2);
    assert!(!run_slices(&trace).is_empty());
}

/// The child: the default runtime, never dropped: its trace is written at exit.
#[test]
#[ignore = "helper: run in a child process by the_default_runtime_writes_its_trace_at_exit"]
fn child_default_runtime() {
    if !support::is_child("child_default_runtime") {
        return;
    }
    let h = corun::Builder::new()
        .name("on-default")
        .spawn(|| corun::sleep(Duration::from_millis(2)))
        .unwrap();
    h.join().unwrap();
    support::child_done();
}

#[test]
fn the_default_runtime_writes_its_trace_at_exit() {
    let path = temp_path("default");
    let out = support::ChildTest::new("child_default_runtime")
        .env("CORUN_TRACE", &path)
        .env("CORUN_WORKERS", "2")
        .env_remove("CORUN_TRACE_LIMIT")
        .output();
    support::assert_child_done(&out);
    let trace = parse(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(trace["otherData"]["stopped"], "process exit");
    check_tracks(&trace, 2);
    let named = events(&trace)
        .iter()
        .any(|e| e["cat"] == "run" && e["name"] == "on-default");
    assert!(named, "the coroutine is not in the trace");
}

#[test]
fn the_time_bound_writes_the_trace_while_the_runtime_runs() {
    let path = temp_path("time");
    let rt = corun::Runtime::builder()
        .workers(2)
        .trace(&path)
        .trace_limit(Duration::from_millis(100), 1_000_000)
        .warnings(corun::Warnings::Off)
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        rt.spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                corun::sleep(Duration::from_millis(1));
            }
        })
    };
    // Written by then, the runtime still running.
    let trace = support::eventually("the trace file", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&path).ok()?;
        serde_json::from_str::<Value>(&text).ok()
    });
    assert_eq!(trace["otherData"]["stopped"], "time bound");
    assert_eq!(trace["otherData"]["truncated"], true);
    let last = run_slices(&trace)
        .iter()
        .map(|s| s.1)
        .max()
        .expect("some slices");
    assert!(
        last < 100_000_000,
        "a slice starts after the bound: {last} ns"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    drop(rt);
    // Dropping it did not write it again.
    assert_eq!(parse(&path)["otherData"]["stopped"], "time bound");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_trace_file_that_cannot_be_created_is_reported_and_the_runtime_runs() {
    let (route, seen) = support::warning_log();
    let bad = Path::new("/nonexistent-corun-dir/trace.json");
    let rt = corun::Runtime::builder()
        .workers(1)
        .trace(bad)
        .warnings(route)
        .build()
        .unwrap();
    assert_eq!(rt.block_on(|| 6 * 7), 42);
    drop(rt);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]
            .contains("cannot create the scheduler trace file /nonexistent-corun-dir/trace.json")
            && seen[0].contains("No such file or directory")
            && seen[0].contains("runs without a trace"),
        "{}",
        seen[0]
    );
}

/// The child: a bad `CORUN_TRACE_LIMIT` is an error of `build()` naming the fix.
#[test]
#[ignore = "helper: run in a child process by a_bad_limit_is_an_error_naming_the_fix"]
fn child_bad_limit() {
    if !support::is_child("child_bad_limit") {
        return;
    }
    let e = corun::Runtime::builder().workers(1).build().err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        e.to_string()
            .contains("CORUN_TRACE_LIMIT=\"ten\" is not <seconds>[,<events>]"),
        "{e}"
    );
    // The builder's own bounds win over the variable.
    let rt = corun::Runtime::builder()
        .workers(1)
        .trace_limit(Duration::from_secs(1), 100)
        .build()
        .unwrap();
    drop(rt);
    support::child_done();
}

#[test]
fn a_bad_limit_is_an_error_naming_the_fix() {
    let out = support::ChildTest::new("child_bad_limit")
        .env("CORUN_TRACE_LIMIT", "ten")
        .env_remove("CORUN_TRACE")
        .output();
    support::assert_child_done(&out);
}
