//! sysmon hand-off: a worker stuck in one coroutine (a CPU hog, a blocking call)
//! loses its P to another thread, which runs the portable work. Each test checks
//! the hand-off in the metrics too, not only that the work ran. Time bounds are
//! generous (a loaded 2-core machine); the figures are printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

/// A coroutine that computes without a switch until `stop` (at most 10 s).
fn hog(rt: &corun::Runtime, stop: Arc<AtomicBool>) -> corun::JoinHandle<u64> {
    rt.spawn(move || {
        let t0 = Instant::now();
        let mut x = 0u64;
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(10) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            std::hint::black_box(x);
        }
        x
    })
}

/// Spawns `n` coroutines running `f` and waits until all have started.
fn hog_every_worker_with<T: Send + 'static>(
    rt: &corun::Runtime,
    n: usize,
    f: fn() -> T,
) -> Vec<corun::JoinHandle<T>> {
    let hs: Vec<_> = (0..n).map(|_| rt.spawn(f)).collect();
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            rt.metrics().workers.iter().map(|w| w.started).sum::<u64>() >= n as u64
        }),
        "they did not start"
    );
    hs
}

/// Spawns `n` hogs and waits until each has started on its own worker.
fn hog_every_worker(
    rt: &corun::Runtime,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<corun::JoinHandle<u64>> {
    let hs: Vec<_> = (0..n).map(|_| hog(rt, stop.clone())).collect();
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            rt.metrics().workers.iter().map(|w| w.started).sum::<u64>() >= n as u64
        }),
        "hogs did not start"
    );
    hs
}

#[test]
fn work_spawned_while_every_worker_hogs_starts_on_another_thread() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let hogs = hog_every_worker(&rt, 2, &stop);
    std::thread::sleep(Duration::from_millis(5));
    let t0 = Instant::now();
    let h = rt.spawn(move || t0.elapsed());
    let started_after = h.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    let m = rt.metrics();
    println!(
        "started {started_after:?} after its spawn; {} hand-offs; Ms {}",
        m.handoffs,
        m.workers.len()
    );
    assert!(m.handoffs >= 1, "no hand-off recorded: {m:?}");
    // The queue really moved: an extra M (beyond the 2 workers) started coroutines.
    assert!(m.workers.len() > 2, "no extra M was started: {m:?}");
    assert!(
        m.workers[2..].iter().map(|w| w.started).sum::<u64>() >= 1,
        "{m:?}"
    );
    assert!(
        started_after < Duration::from_secs(2),
        "started after {started_after:?}"
    );
}

#[test]
fn a_migratable_sleeper_keeps_time_while_every_worker_hogs() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // SAFETY: holds only `Instant`s and `Duration`s across its sleeps.
    let b = unsafe { corun::Builder::new().migratable() };
    let sleeper = b
        .spawn_on(rt.handle(), || {
            let mut worst = Duration::ZERO;
            for _ in 0..20 {
                let t = Instant::now();
                corun::sleep(Duration::from_millis(5));
                worst = worst.max(t.elapsed().saturating_sub(Duration::from_millis(5)));
            }
            worst
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let hogs = hog_every_worker(&rt, 2, &stop);
    let worst = sleeper.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    let m = rt.metrics();
    println!("worst lateness {worst:?}; {} hand-offs", m.handoffs);
    assert!(m.handoffs >= 1, "{m:?}");
    assert!(worst < Duration::from_millis(500), "late by {worst:?}");
}

#[test]
fn new_work_runs_while_every_worker_is_stuck_in_a_blocking_call() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let stuck: Vec<_> = (0..2)
        .map(|_| rt.spawn(|| std::thread::sleep(Duration::from_millis(3000))))
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let t0 = Instant::now();
    let sum: u64 = (0..100u64)
        .map(|i| rt.spawn(move || i))
        .map(|h| h.join().unwrap())
        .sum();
    let took = t0.elapsed();
    for h in stuck {
        h.join().unwrap();
    }
    let m = rt.metrics();
    println!(
        "100 coroutines ran in {took:?} while both workers slept; {} hand-offs",
        m.handoffs
    );
    assert_eq!(sum, 4950);
    assert!(m.handoffs >= 1, "{m:?}");
    assert!(
        took < Duration::from_millis(2500),
        "they waited for the stuck workers: {took:?}"
    );
}

#[test]
fn after_the_hog_the_stuck_worker_takes_a_p_again_and_runs_its_own_coroutines() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // One coroutine hogs, then parks on a channel; its worker's thread must serve it.
    let (tx, rx) = corun::chan::bounded::<u32>(0);
    let h = rt.spawn(move || {
        let me = std::thread::current().id();
        let t0 = Instant::now();
        while !s.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(10) {
            std::hint::spin_loop();
        }
        let v = rx.recv().unwrap();
        (v, me == std::thread::current().id())
    });
    std::thread::sleep(Duration::from_millis(50));
    // Meanwhile an extra M runs new work.
    assert_eq!(rt.block_on(|| 5), 5);
    stop.store(true, Ordering::Relaxed);
    tx.send(7).unwrap();
    let (v, same_thread) = h.join().unwrap();
    assert_eq!(v, 7);
    assert!(same_thread, "a started coroutine changed thread");
    assert!(rt.metrics().handoffs >= 1);
}

/// The hog warning says what held the worker, judged by the thread's CPU clock: a
/// coroutine blocked in a system call, then (a second later: one line a second at
/// most) one that computes with no yield point.
#[test]
fn the_warning_tells_a_blocking_call_from_a_computing_loop() {
    let out = support::ChildTest::new("child_warnings").output();
    support::assert_child_done(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("corun:")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("'sleeper'") && l.contains("has been blocked in a system call")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("'spinner'") && l.contains("has computed on worker")),
        "{err}"
    );
}

#[test]
#[ignore = "run as a child by the_warning_tells_a_blocking_call_from_a_computing_loop"]
fn child_warnings() {
    if !support::is_child("child_warnings") {
        return;
    }
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let sleeper = corun::Builder::new()
        .name("sleeper")
        .spawn_on(rt.handle(), || {
            std::thread::sleep(Duration::from_millis(300))
        })
        .unwrap();
    sleeper.join().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        corun::Builder::new()
            .name("spinner")
            .spawn_on(rt.handle(), move || {
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_millis(300) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    };
    spinner.join().unwrap();
    support::child_done();
}

/// Warnings go through the route the builder names, and are counted in the metrics
/// whatever the route.
#[test]
fn warnings_go_to_the_callback_and_are_counted() {
    let (route, lines) = support::warning_log();
    let rt = corun::Runtime::builder()
        .workers(1)
        .warnings(route)
        .build()
        .unwrap();
    rt.spawn(|| std::thread::sleep(Duration::from_millis(200)))
        .join()
        .unwrap();
    let m = rt.metrics();
    let got = lines.lock().unwrap().clone();
    assert_eq!(m.stalls_blocked, 1, "{m:?} {got:?}");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("corun: ") && got[0].contains("blocked in a system call"),
        "{got:?}"
    );

    let quiet = corun::Runtime::builder()
        .workers(1)
        .warnings(corun::Warnings::Off)
        .build()
        .unwrap();
    quiet
        .spawn(|| std::thread::sleep(Duration::from_millis(200)))
        .join()
        .unwrap();
    assert_eq!(quiet.metrics().stalls_blocked, 1);
}

/// An M whose P was handed off while it was stuck gets a P back once it returns,
/// even while the Ms holding the Ps never sleep (their coroutines keep yielding):
/// Ps go round the Ms whose coroutines need them.
#[test]
fn a_worker_back_from_a_blocking_call_gets_a_p_while_others_stay_busy() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(1)
        .warnings(corun::Warnings::Off)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The worker stuck in a blocking call: its P goes, and an extra thread takes it
    // for the coroutines spawned meanwhile.
    let blocked = hog_every_worker_with(&rt, 1, || {
        std::thread::sleep(Duration::from_millis(150));
        let back = Instant::now();
        corun::yield_now(); // needs its M to hold a P again
        back.elapsed()
    });
    std::thread::sleep(Duration::from_millis(30));
    // Busy coroutines that never let their workers sleep, spawned while it blocks.
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            rt.spawn(move || {
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(10) {
                    corun::yield_now();
                }
            })
        })
        .collect();
    let waited = blocked
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    let m = rt.metrics();
    println!(
        "back from the blocking call, it ran again after {waited:?} (handoffs {}, threads {})",
        m.handoffs, m.threads
    );
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}
