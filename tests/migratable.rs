//! `Builder::migratable`: coroutines that may move between workers at park points.
//! These hold nothing thread-bound across a blocking point, so the contract holds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn migratable_coroutines_finish_correctly_and_may_change_thread() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let sum = Arc::new(AtomicU64::new(0));
    let threads_seen = Arc::new(Mutex::new(HashSet::new()));
    let moved = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..64u64)
        .map(|i| {
            let (sum, threads_seen, moved) = (sum.clone(), threads_seen.clone(), moved.clone());
            // SAFETY: the closure holds only `Send` values (Arcs, integers, a
            // `ThreadId` copied out) across its yields and sleeps, and no thread-local.
            let b = unsafe { corun::Builder::new().migratable() };
            b.spawn_on(rt.handle(), move || {
                let mut last = std::thread::current().id();
                for k in 0..200u64 {
                    if k % 50 == 0 {
                        corun::sleep(Duration::from_micros(200));
                    } else {
                        corun::yield_now();
                    }
                    let now = std::thread::current().id();
                    if now != last {
                        moved.fetch_add(1, Ordering::Relaxed);
                        last = now;
                    }
                    threads_seen.lock().unwrap().insert(format!("{now:?}"));
                }
                sum.fetch_add(i, Ordering::Relaxed);
                i
            })
            .unwrap()
        })
        .collect();
    let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (0..64).sum::<u64>());
    assert_eq!(sum.load(Ordering::Relaxed), total);
    // Both workers ran them; whether any one moved depends on timing, so it is only
    // reported (a started non-migratable coroutine never moves: tests/threads.rs).
    assert!(!threads_seen.lock().unwrap().is_empty());
    eprintln!(
        "migratable: {} thread changes seen over 64 coroutines, {} threads",
        moved.load(Ordering::Relaxed),
        threads_seen.lock().unwrap().len()
    );
}

#[test]
fn dropping_a_runtime_cancels_parked_migratable_coroutines() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    struct Guard(Arc<AtomicU64>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let g = Guard(dropped.clone());
            // SAFETY: holds only a `Send` guard across its park.
            let b = unsafe { corun::Builder::new().migratable() };
            b.spawn_on(rt.handle(), move || {
                let _g = g;
                loop {
                    corun::park();
                }
            })
            .unwrap()
        })
        .collect();
    // Let them all start and park.
    while rt.metrics().workers.iter().map(|w| w.started).sum::<u64>() < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    for h in hs {
        let e = h.join().unwrap_err();
        assert!(e.downcast_ref::<corun::Cancelled>().is_some());
    }
    assert_eq!(dropped.load(Ordering::Relaxed), 10);
}

#[test]
fn a_migratable_coroutine_is_stolen_while_its_worker_is_blocked() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    // SAFETY: holds only `ThreadId`s (Copy, Send) across its yield.
    let b = unsafe { corun::Builder::new().migratable() };
    let h = b
        .spawn_on(rt.handle(), || {
            let before = std::thread::current().id();
            // A coroutine that blocks this worker's thread; it runs next (runnext),
            // while this one waits in the stealable queue.
            let hog = corun::spawn(|| std::thread::sleep(Duration::from_millis(500)));
            corun::yield_now();
            let after = std::thread::current().id();
            hog.join().unwrap();
            (before, after)
        })
        .unwrap();
    let (before, after) = h.join().unwrap();
    assert_ne!(
        before, after,
        "the other worker should have stolen it while its worker was blocked"
    );
}
