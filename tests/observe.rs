//! Seeing the scheduler: schedtrace, metrics, the coroutine dump, stack statistics,
//! and the cooperative budget.
//!
//! Nothing here depends on timing: every wait is "until the runtime shows it" with a
//! generous deadline, and the budget test counts iterations, not time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{eventually, is_child, ChildTest};

mod support;

/// How long `eventually` waits for the runtime to show something.
const PATIENCE: Duration = Duration::from_secs(20);

/// The block of the dump about the coroutine named `name`: its header line.
fn dump_line<'a>(dump: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\" [");
    dump.lines()
        .find(|l| l.starts_with("coroutine ") && l.contains(&key))
}

// ---- schedtrace ----

#[test]
#[ignore = "helper: runs only as the child of schedtrace_prints_parsable_lines"]
fn schedtrace_child() {
    if !is_child("schedtrace_child") {
        return;
    }
    let (tx, rx) = corun::chan::unbounded::<()>();
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let rx = rx.clone();
            corun::spawn(move || rx.recv().is_err())
        })
        .collect();
    // Until every coroutine is parked, then long enough for many lines.
    eventually("10 parked", PATIENCE, || {
        (corun::metrics().parks() >= 10).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(tx);
    for h in hs {
        assert!(h.join().unwrap());
    }
}

/// One parsed schedtrace line.
#[derive(Debug)]
struct Sched {
    ms: u64,
    workers: usize,
    idle: usize,
    threads: usize,
    spinning: usize,
    global: usize,
    locals: Vec<usize>,
    live: usize,
}

fn parse_sched(line: &str) -> Option<Sched> {
    let rest = line.strip_prefix("SCHED ")?;
    let (ms, rest) = rest.split_once("ms: ")?;
    let (head, rest) = rest.split_once(" [")?;
    let (locals, tail) = rest.split_once("] ")?;
    let field = |s: &str, k: &str| -> Option<u64> {
        s.split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some(Sched {
        ms: ms.parse().ok()?,
        workers: field(head, "workers")? as usize,
        idle: field(head, "idleprocs")? as usize,
        threads: field(head, "threads")? as usize,
        spinning: field(head, "spinningthreads")? as usize,
        global: field(head, "runqueue")? as usize,
        locals: locals
            .split(' ')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?,
        live: {
            field(tail, "steals")?;
            assert_eq!(field(tail, "handoffs")?, 0);
            field(tail, "budgetyields")?;
            field(tail, "live")? as usize
        },
    })
}

#[test]
fn schedtrace_prints_parsable_lines() {
    let out = ChildTest::new("schedtrace_child")
        .env("CORUN_SCHEDTRACE", "10")
        .env("CORUN_WORKERS", "2")
        .output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 3, "too few schedtrace lines:\n{err}");
    let parsed: Vec<Sched> = lines
        .iter()
        .map(|l| parse_sched(l).unwrap_or_else(|| panic!("unparsable line {l:?}")))
        .collect();
    for (a, b) in parsed.iter().zip(&parsed[1..]) {
        assert!(a.ms <= b.ms, "time goes back: {a:?} {b:?}");
    }
    for s in &parsed {
        assert_eq!(s.workers, 2, "{s:?}");
        assert_eq!(s.locals.len(), 2, "{s:?}");
        assert_eq!(s.threads, 4, "two workers, sysmon and the monitor: {s:?}");
        assert!(s.idle <= 2 && s.spinning <= 2, "{s:?}");
        assert!(s.live <= 10 + s.global + s.locals.iter().sum::<usize>() + 1);
    }
    assert!(
        parsed.iter().any(|s| s.live == 10 && s.idle == 2),
        "no line shows the 10 parked coroutines on idle workers:\n{err}"
    );
}

fn monitor_threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == format!("{prefix}-monitor"))
        .count()
}

#[test]
fn monitor_stops_with_its_runtime() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .name("obsmon")
        .schedtrace(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(rt.metrics().threads, 3, "a worker, sysmon, the monitor");
    // A thread names itself once it runs.
    eventually("the monitor thread", PATIENCE, || {
        (monitor_threads("obsmon") == 1).then_some(())
    });
    let t = Instant::now();
    drop(rt);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "drop waited out the interval"
    );
    assert_eq!(monitor_threads("obsmon"), 0);
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(
        rt.metrics().threads,
        2,
        "a worker and sysmon: no monitor unless asked"
    );
}

// ---- metrics ----

#[test]
fn metrics_add_up() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = corun::chan::unbounded::<u64>();
    let mut hs = Vec::new();
    for _ in 0..20 {
        let rx = rx.clone();
        hs.push(rt.spawn(move || rx.recv().unwrap()));
    }
    // And 20 more spawned by a coroutine (counted by its worker).
    let rx2 = rx.clone();
    let inner = rt.block_on(move || {
        (0..20)
            .map(|_| {
                let rx = rx2.clone();
                corun::spawn(move || rx.recv().unwrap())
            })
            .collect::<Vec<_>>()
    });
    hs.extend(inner);
    let m = eventually("40 parked coroutines", PATIENCE, || {
        let m = rt.metrics();
        let alive: usize = m.workers.iter().map(|w| w.started_alive).sum();
        (alive == 40 && m.queued_unstarted == 0 && m.parks() >= 40).then_some(m)
    });
    assert_eq!(m.live, 40, "{m:?}");
    assert_eq!(m.spawned(), 41, "{m:?}");
    assert_eq!(m.spawned_outside, 21, "{m:?}");
    assert_eq!(m.finished(), 1, "{m:?}");
    assert_eq!(m.spawned(), m.finished() + m.live as u64, "{m:?}");
    assert_eq!(m.workers.iter().map(|w| w.spawned).sum::<u64>(), 20);
    // Hand-off runs on wall time, and a loaded machine (CI under ASan) can keep a
    // worker thread off the CPU for 15 ms: then sysmon may have started a thread.
    if m.handoffs == 0 {
        assert_eq!(m.threads, 3, "two workers and sysmon");
    } else {
        assert_eq!(m.threads, m.workers.len() + 1, "the Ms started and sysmon");
    }
    assert!(m.stack_high_water_max.is_none());
    for i in 0..40 {
        tx.send(i).unwrap();
    }
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..40).sum());
    let m = eventually("all finished", PATIENCE, || {
        let m = rt.metrics();
        (m.finished() == 41).then_some(m)
    });
    assert_eq!(m.live, 0, "{m:?}");
    assert_eq!(m.spawned(), m.finished() + m.live as u64);
    assert_eq!(m.workers.iter().map(|w| w.started).sum::<u64>(), 41);
    assert!(m.switches() >= m.parks() + 41, "{m:?}");
    assert!(
        m.workers
            .iter()
            .all(|w| w.switches == 0 || w.busy > Duration::ZERO),
        "{m:?}"
    );
    assert!(m.stacks_mapped >= 41 - m.stacks_pooled.min(41));
}

// ---- the dump ----

#[test]
fn dump_names_what_each_coroutine_waits_on() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = corun::chan::bounded::<u32>(0);
    let (stx, srx) = corun::chan::bounded::<u32>(0);
    let lock = Arc::new(corun::sync::Mutex::new(()));
    let held = lock.lock();
    let named = |n: &str| corun::Builder::new().name(n);

    let recv = named("recv")
        .spawn_on(rt.handle(), move || rx.recv())
        .unwrap();
    let send = named("send")
        .spawn_on(rt.handle(), move || stx.send(1).is_ok())
        .unwrap();
    let l2 = lock.clone();
    let mutex = named("mutex")
        .spawn_on(rt.handle(), move || drop(l2.lock()))
        .unwrap();
    let sleeper = named("sleeper")
        .spawn_on(rt.handle(), || corun::sleep(Duration::from_secs(3600)))
        .unwrap();
    let (_never_tx, never_rx) = corun::chan::bounded::<()>(0);
    let (_never2_tx, never2_rx) = corun::chan::bounded::<()>(0);
    let select = named("select")
        .spawn_on(rt.handle(), move || {
            corun::select! {
                recv(never_rx) -> _ => 1,
                recv(never2_rx) -> _ => 2,
            }
        })
        .unwrap();
    let sleeper = Arc::new(std::sync::Mutex::new(Some(sleeper)));
    let s2 = sleeper.clone();
    let joiner = named("joiner")
        .spawn_on(rt.handle(), move || {
            let h = s2.lock().unwrap().take().unwrap();
            h.join().is_err()
        })
        .unwrap();

    let dump = eventually("every coroutine parked", PATIENCE, || {
        let d = rt.dump();
        let all = ["recv", "send", "mutex", "sleeper", "select", "joiner"]
            .iter()
            .all(|n| {
                dump_line(&d, n)
                    .is_some_and(|l| !l.contains("[runnable]") && !l.contains("[running]"))
            });
        all.then_some(d)
    });
    let line = |n| dump_line(&dump, n).unwrap();
    assert!(line("recv").contains("[chan receive, "), "{dump}");
    assert!(line("send").contains("[chan send, "), "{dump}");
    assert!(line("mutex").contains("[sync.Mutex.Lock, "), "{dump}");
    assert!(line("sleeper").contains("[sleep, "), "{dump}");
    assert!(line("sleeper").contains(", until +"), "{dump}");
    assert!(line("select").contains("[select, "), "{dump}");
    assert!(line("joiner").contains("[join, "), "{dump}");
    assert!(
        dump.starts_with("corun: 2 workers, 6 coroutines started and alive"),
        "{dump}"
    );
    // Each block names its worker and stack.
    assert_eq!(dump.matches("\tworker ").count(), 6, "{dump}");
    assert!(dump.contains(" of 256 KiB"), "{dump}");

    // Let them end: three by their counterpart, the others by the runtime's drop.
    tx.send(7).unwrap();
    assert_eq!(srx.recv().unwrap(), 1);
    drop(held);
    assert_eq!(recv.join().unwrap().unwrap(), 7);
    assert!(send.join().unwrap());
    mutex.join().unwrap();
    drop(rt);
    assert!(select.join().is_err());
    // Cancelled itself, or saw the sleeper cancelled: either way it ended.
    assert!(joiner.join().unwrap_or(true));
}

#[test]
fn dump_names_a_blocking_call() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let h = corun::Builder::new()
        .name("blocker")
        .spawn_on(rt.handle(), move || {
            corun::blocking(move || rx.recv().unwrap())
        })
        .unwrap();
    let d = eventually("blocked", PATIENCE, || {
        let d = rt.dump();
        dump_line(&d, "blocker")
            .is_some_and(|l| l.contains("[blocking call, "))
            .then_some(d)
    });
    assert!(d.contains("\tworker 0"), "{d}");
    tx.send(5).unwrap();
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn dump_works_while_the_only_worker_is_hogged() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = corun::chan::bounded::<()>(0);
    let parked = corun::Builder::new()
        .name("parked")
        .spawn_on(rt.handle(), move || rx.recv().is_ok())
        .unwrap();
    eventually("parked", PATIENCE, || {
        dump_line(&rt.dump(), "parked")
            .is_some_and(|l| l.contains("[chan receive"))
            .then_some(())
    });
    let (go, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (go2, stop2) = (go.clone(), stop.clone());
    let hog = corun::Builder::new()
        .name("hog")
        .spawn_on(rt.handle(), move || {
            go2.store(true, Ordering::Release);
            while !stop2.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    eventually("hog running", PATIENCE, || {
        go.load(Ordering::Acquire).then_some(())
    });
    // The worker never gets back to its loop now; the dump must not need it.
    let d = rt.dump();
    stop.store(true, Ordering::Release);
    assert!(dump_line(&d, "hog").unwrap().contains("[running]"), "{d}");
    assert!(
        dump_line(&d, "parked").unwrap().contains("[chan receive"),
        "{d}"
    );
    hog.join().unwrap();
    tx.send(()).unwrap();
    assert!(parked.join().unwrap());
}

// ---- stacks ----

#[inline(never)]
fn deep(n: usize) -> u64 {
    let buf = std::hint::black_box([n as u8; 1024]);
    if n == 0 {
        return buf[0] as u64;
    }
    deep(n - 1) + std::hint::black_box(&buf)[1] as u64
}

#[test]
fn stack_high_water_reflects_deep_recursion() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .stack_stats(true)
        .build()
        .unwrap();
    let (deep_used, shallow_before) = rt.block_on(|| {
        let before = corun::stack_high_water().unwrap();
        deep(150);
        (corun::stack_high_water().unwrap(), before)
    });
    assert!(shallow_before < 64 * 1024, "{shallow_before}");
    assert!(deep_used >= 150 * 1024, "{deep_used}");
    // The next coroutine gets the same pooled stack: it must not report the
    // previous owner's use.
    let next = rt.block_on(corun::stack_high_water).unwrap();
    assert!(next < 64 * 1024, "a reused stack reports {next} bytes");
    let m = eventually("both finished", PATIENCE, || {
        let m = rt.metrics();
        (m.finished() == 2).then_some(m)
    });
    assert!(m.stack_high_water_max.unwrap() >= 150 * 1024, "{m:?}");

    // A parked coroutine's dump shows its use.
    let (tx, rx) = corun::chan::bounded::<()>(0);
    fn deep_then_wait(n: usize, rx: &corun::chan::Receiver<()>) -> u64 {
        let buf = std::hint::black_box([n as u8; 1024]);
        if n == 0 {
            rx.recv().unwrap();
            return 0;
        }
        deep_then_wait(n - 1, rx) + std::hint::black_box(&buf)[1] as u64
    }
    let h = corun::Builder::new()
        .name("deep")
        .spawn_on(rt.handle(), move || deep_then_wait(100, &rx))
        .unwrap();
    let line = eventually("deep parked", PATIENCE, || {
        let d = rt.dump();
        let i = d.find("\"deep\" [chan receive")?;
        Some(d[i..].lines().nth(1)?.to_owned())
    });
    let kib: usize = line
        .split("stack ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no stack figure in {line:?}"));
    assert!(kib >= 100, "{line}");
    assert!(line.contains("used of 256 KiB"), "{line}");
    tx.send(()).unwrap();
    h.join().unwrap();

    // Off by default: nothing measured.
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.block_on(corun::stack_high_water), None);
    assert_eq!(rt.metrics().stack_high_water_max, None);
}

// ---- the cooperative budget ----

/// A coroutine looping on ready channel operations on the only worker: without the
/// budget it would run its whole loop before the other coroutine gets a turn.
#[test]
fn budget_makes_a_ready_channel_loop_yield() {
    const LIMIT: u64 = 5_000_000;
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (started, flag) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (s2, f2) = (started.clone(), flag.clone());
    let looper = rt.spawn(move || {
        let (tx, rx) = corun::chan::unbounded::<u64>();
        s2.store(true, Ordering::Release);
        let mut n = 0;
        while !f2.load(Ordering::Acquire) && n < LIMIT {
            tx.send(n).unwrap();
            assert_eq!(rx.recv().unwrap(), n);
            n += 1;
        }
        n
    });
    eventually("looper running", PATIENCE, || {
        started.load(Ordering::Acquire).then_some(())
    });
    let f3 = flag.clone();
    let other = rt.spawn(move || f3.store(true, Ordering::Release));
    let n = looper.join().unwrap();
    other.join().unwrap();
    assert!(n < LIMIT, "the other coroutine never ran during the loop");
    let m = rt.metrics();
    assert!(m.budget_yields() >= 1, "{m:?}");
    // About one forced yield per 128 operations (two per iteration).
    assert!(
        m.budget_yields() <= 2 * n / 100 + 1,
        "{n} iterations, {m:?}"
    );
}

#[test]
fn budget_makes_a_mutex_loop_yield() {
    const LIMIT: u64 = 5_000_000;
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (started, flag) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (s2, f2) = (started.clone(), flag.clone());
    let looper = rt.spawn(move || {
        let m = corun::sync::Mutex::new(0u64);
        s2.store(true, Ordering::Release);
        while !f2.load(Ordering::Acquire) && *m.lock() < LIMIT {
            *m.lock() += 1;
        }
        let n = *m.lock();
        n
    });
    eventually("looper running", PATIENCE, || {
        started.load(Ordering::Acquire).then_some(())
    });
    let f3 = flag.clone();
    rt.spawn(move || f3.store(true, Ordering::Release))
        .join()
        .unwrap();
    assert!(looper.join().unwrap() < LIMIT);
    assert!(rt.metrics().budget_yields() >= 1);
}

#[test]
fn budget_is_not_spent_by_waiting_operations() {
    // A ping-pong parks on every receive: each switch-in refills the budget, so
    // no yield is ever forced.
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (atx, arx) = corun::chan::bounded::<u64>(0);
    let (btx, brx) = corun::chan::bounded::<u64>(0);
    let pong = rt.spawn(move || {
        for v in arx.iter() {
            btx.send(v + 1).unwrap();
        }
    });
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    rt.block_on(move || {
        for i in 0..10_000 {
            atx.send(i).unwrap();
            assert_eq!(brx.recv().unwrap(), i + 1);
            n2.fetch_add(1, Ordering::Relaxed);
        }
    });
    pong.join().unwrap();
    assert_eq!(n.load(Ordering::Relaxed), 10_000);
    assert_eq!(rt.metrics().budget_yields(), 0);
}
