//! Time-bound behaviour of corun::sync, one test at a time (shared lock).

use corun::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::serial;

mod support;

/// Hammerers take the lock in a tight loop; a late waiter must still get it soon
/// (Go's starvation mode: after ~1 ms of waiting it is handed the lock).
fn no_starvation(waiter_is_thread: bool) {
    let _serial = serial();
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let mut hammer = Vec::new();
    for i in 0..8 {
        let (m, stop) = (m.clone(), stop.clone());
        let body = move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if n % 64 == 0 {
                    // Coroutines are not preempted: let the probe coroutine start.
                    corun::yield_now();
                }
                let mut g = m.lock();
                *g += 1;
                // Hold it a little, as real critical sections do.
                for _ in 0..50 {
                    std::hint::spin_loop();
                }
                drop(g);
            }
        };
        if i < 2 {
            hammer.push(Err(std::thread::spawn(body)));
        } else {
            hammer.push(Ok(rt.spawn(body)));
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let worst = Arc::new(AtomicU64::new(0));
    for _ in 0..20 {
        let (m, worst) = (m.clone(), worst.clone());
        let probe = move || {
            let t0 = Instant::now();
            let g = m.lock();
            let waited = t0.elapsed().as_micros() as u64;
            drop(g);
            worst.fetch_max(waited, Ordering::SeqCst);
        };
        if waiter_is_thread {
            std::thread::spawn(probe).join().unwrap();
        } else {
            rt.spawn(probe).join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for h in hammer {
        match h {
            Ok(h) => h.join().unwrap(),
            Err(t) => t.join().unwrap(),
        }
    }
    let worst = Duration::from_micros(worst.load(Ordering::SeqCst));
    eprintln!("worst wait for the lock: {worst:?}");
    assert!(*m.lock() > 0);
    // Generous: 1 ms to turn fair, plus the queue ahead and scheduling noise.
    assert!(
        worst < Duration::from_millis(200),
        "a waiter waited {worst:?}"
    );
}

#[test]
fn coroutine_waiter_is_not_starved() {
    no_starvation(false);
}

#[test]
fn thread_waiter_is_not_starved() {
    no_starvation(true);
}

#[test]
fn parked_coroutines_free_their_workers() {
    let _serial = serial();
    // One worker: 100 coroutines wait on a held lock, yet another coroutine still runs.
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let m = Arc::new(Mutex::new(0u32));
    let g = m.lock();
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let m = m.clone();
            rt.spawn(move || *m.lock() += 1)
        })
        .collect();
    let other = rt.spawn(|| 7);
    assert_eq!(other.join().unwrap(), 7);
    drop(g);
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 100);
}
