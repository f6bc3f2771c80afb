//! Time-bound behaviour, with generous bounds. The tests here take a shared lock so
//! that they run one at a time: CPU time and wake-up latency are measured for the
//! whole process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::serial;

mod support;

/// User + system CPU time of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn sleeping_coroutines_use_no_cpu() {
    if support::under_sanitizer() {
        // It measures CPU time: under a sanitizer everything costs several times more.
        eprintln!(
            "SKIPPED sleeping_coroutines_use_no_cpu: it measures CPU use, not under a sanitizer"
        );
        return;
    }
    let _serial = serial();
    const N: usize = 10_000;
    const NAP: Duration = Duration::from_secs(1);
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let asleep = Arc::new(AtomicUsize::new(0));
    let spawned_at = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let asleep = asleep.clone();
            rt.spawn(move || {
                asleep.fetch_add(1, Ordering::SeqCst);
                corun::sleep(NAP);
            })
        })
        .collect();
    while asleep.load(Ordering::SeqCst) < N {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the last ones finish parking, then measure while all of them sleep (and
    // stop before the first can wake).
    std::thread::sleep(Duration::from_millis(20));
    let (cpu0, wall0) = (process_cpu(), Instant::now());
    let end = spawned_at + NAP - Duration::from_millis(100);
    assert!(
        end > wall0 + Duration::from_millis(200),
        "spawning {N} coroutines took {:?}, too long to measure",
        wall0 - spawned_at
    );
    std::thread::sleep(end - wall0);
    let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
    let unfinished = handles.iter().filter(|h| !h.is_finished()).count();
    assert_eq!(unfinished, N, "sleepers woke before {NAP:?}");
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "{N} sleepers: {cpu:?} CPU over {wall:?} ({:.1}% of a core)",
        share * 100.0
    );
    assert!(
        share < 0.25,
        "{N} sleeping coroutines used {cpu:?} of CPU over {wall:?} ({:.0}% of a core)",
        share * 100.0
    );
    for h in handles {
        h.join().unwrap();
    }
    assert!(spawned_at.elapsed() >= NAP);
}

#[test]
fn sleep_wakes_after_its_duration_and_not_much_later() {
    let _serial = serial();
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    for ms in [1u64, 10, 50] {
        let d = Duration::from_millis(ms);
        let slept = rt.block_on(move || {
            let t = Instant::now();
            corun::sleep(d);
            t.elapsed()
        });
        assert!(slept >= d, "sleep({d:?}) returned after {slept:?}");
        assert!(
            slept < d + Duration::from_secs(2),
            "sleep({d:?}) took {slept:?}"
        );
    }
    // sleep_until, and a deadline in the past returns at once.
    let early = rt.block_on(|| {
        let deadline = Instant::now() + Duration::from_millis(30);
        corun::sleep_until(deadline);
        Instant::now() >= deadline
    });
    assert!(early);
    let past = rt.block_on(|| {
        let t = Instant::now();
        corun::sleep_until(t - Duration::from_millis(5));
        corun::sleep(Duration::ZERO);
        t.elapsed()
    });
    assert!(past < Duration::from_secs(1), "{past:?}");
}

#[test]
fn park_timeout_times_out() {
    let _serial = serial();
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let waited = rt.block_on(|| {
        let t = Instant::now();
        corun::park_timeout(Duration::from_millis(40));
        t.elapsed()
    });
    // park_timeout may return spuriously early, but not hang.
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // ... and an unpark ends it early.
    let h = rt.spawn(|| {
        let t = Instant::now();
        corun::park_timeout(Duration::from_secs(30));
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(10));
    h.coroutine().unpark();
    let waited = h.join().unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "unpark did not end park_timeout: {waited:?}"
    );
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let _serial = serial();
    const N: u64 = 40;
    const STEP: Duration = Duration::from_millis(5);
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let start = Instant::now() + Duration::from_millis(20);
    let woke = Arc::new(Mutex::new(Vec::new()));
    // Spawn in a scrambled order so spawn order says nothing about deadlines.
    let order: Vec<u64> = (0..N).map(|i| (i * 17 + 5) % N).collect();
    let handles: Vec<_> = order
        .iter()
        .map(|&k| {
            let woke = woke.clone();
            rt.spawn(move || {
                let deadline = start + STEP * (k as u32 + 1);
                corun::sleep_until(deadline);
                let now = Instant::now();
                woke.lock().unwrap().push((k, now));
                now >= deadline
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert!(
            h.join().unwrap(),
            "sleeper {} woke before its deadline",
            order[i]
        );
    }
    let mut woke = woke.lock().unwrap().clone();
    woke.sort_by_key(|&(_, t)| t);
    let ks: Vec<u64> = woke.iter().map(|&(k, _)| k).collect();
    // Deadlines 5 ms apart may swap under load (the two workers keep their own
    // timers); ones 30 ms or more apart may not.
    for (i, &a) in ks.iter().enumerate() {
        for &b in &ks[i + 1..] {
            assert!(
                a < b + 6,
                "sleeper {a} woke before sleeper {b}, 5 ms x {} earlier: {ks:?}",
                a - b
            );
        }
    }
    let last = woke.last().unwrap().1;
    let latest_deadline = start + STEP * N as u32;
    assert!(
        last < latest_deadline + Duration::from_secs(2),
        "last sleeper woke {:?} late",
        last - latest_deadline
    );
}

#[test]
fn a_busy_worker_does_not_delay_a_sleeper_on_the_other() {
    let _serial = serial();
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let busy_running = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (running, stop2) = (busy_running.clone(), stop.clone());
    let busy = rt.spawn(move || {
        let me = std::thread::current().id();
        running.store(true, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(5);
        let mut spins = 0u64;
        // Hogs its worker without ever yielding.
        while !stop2.load(Ordering::Relaxed) && Instant::now() < give_up {
            spins = std::hint::black_box(spins + 1);
        }
        (spins, me)
    });
    while !busy_running.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let nap = Duration::from_millis(50);
    let sleeper = rt.spawn(move || {
        let t = Instant::now();
        corun::sleep(nap);
        (t.elapsed(), std::thread::current().id())
    });
    let (slept, sleeper_thread) = sleeper.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let (spins, busy_thread) = busy.join().unwrap();
    assert!(spins > 0);
    assert!(slept >= nap, "{slept:?}");
    assert!(
        slept < nap + Duration::from_millis(1000),
        "a sleeper on the free worker slept {slept:?} for {nap:?} while the other worker was busy"
    );
    assert_ne!(
        sleeper_thread, busy_thread,
        "the sleeper shared the busy worker"
    );
}
