//! Dropping a runtime: parked and sleeping coroutines are unwound (their destructors
//! run, their `join` gives `Cancelled`), unstarted ones are dropped, scoped children
//! unwind before their scope's owner, and a dead runtime refuses new work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts its drops.
struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn is_cancelled(r: &std::thread::Result<()>) -> bool {
    matches!(r, Err(e) if e.downcast_ref::<corun::Cancelled>().is_some())
}

#[test]
fn dropping_the_runtime_unwinds_parked_and_sleeping_coroutines() {
    const PARKED: usize = 300;
    const SLEEPING: usize = 50;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..PARKED + SLEEPING {
        let guard = Guard(drops.clone());
        let started = started.clone();
        handles.push(rt.spawn(move || {
            let _guard = guard;
            started.fetch_add(1, Ordering::SeqCst);
            if i < PARKED {
                loop {
                    corun::park();
                }
            } else {
                corun::sleep(Duration::from_secs(3600));
            }
        }));
    }
    while started.load(Ordering::SeqCst) < PARKED + SLEEPING {
        std::thread::yield_now();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(rt.metrics().live, PARKED + SLEEPING);
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), PARKED + SLEEPING);
    for (i, h) in handles.into_iter().enumerate() {
        assert!(h.is_finished(), "coroutine {i} not finished after drop");
        let r = h.join();
        assert!(is_cancelled(&r), "coroutine {i}: join gave {:?}", r.is_ok());
    }
}

struct Unstarted {
    spawned: usize,
    guards_dropped: usize,
    bodies_run: usize,
    results: Vec<std::thread::Result<()>>,
}

/// Spawns `N` parking coroutines onto a 1-worker runtime whose worker is held by a
/// blocker until the runtime starts shutting down (seen as a refused spawn), then
/// drops the runtime.
fn drop_runtime_with_unstarted_coroutines() -> Unstarted {
    const N: usize = 1000;
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let blocker = rt.spawn(move || {
        tx.send(()).unwrap();
        while corun::Builder::new().spawn_on(&handle, || ()).is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    rx.recv().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let guard = Guard(drops.clone());
            let ran = ran.clone();
            rt.spawn(move || {
                let _guard = guard;
                ran.fetch_add(1, Ordering::SeqCst);
                loop {
                    corun::park();
                }
            })
        })
        .collect();
    // The worker is held: only the blocker has started.
    assert_eq!(rt.metrics().workers[0].started, 1);
    drop(rt);
    assert!(blocker.join().is_ok());
    Unstarted {
        spawned: N,
        guards_dropped: drops.load(Ordering::SeqCst),
        bodies_run: ran.load(Ordering::SeqCst),
        results: handles.into_iter().map(|h| h.join()).collect(),
    }
}

#[test]
fn dropping_the_runtime_drops_unstarted_coroutines() {
    let u = drop_runtime_with_unstarted_coroutines();
    assert_eq!(u.guards_dropped, u.spawned, "captured guards not dropped");
    for (i, r) in u.results.iter().enumerate() {
        assert!(is_cancelled(r), "queued coroutine {i}: join gave Ok");
    }
}

#[test]
fn no_queued_coroutine_starts_once_the_runtime_is_dropped() {
    // `Runtime`'s docs: dropping it "drops those never started".
    let u = drop_runtime_with_unstarted_coroutines();
    assert_eq!(
        u.bodies_run, 0,
        "of {} coroutines queued when drop(Runtime) began, {} were started and ran",
        u.spawned, u.bodies_run
    );
}

#[test]
fn finished_results_survive_the_runtime() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..100u64).map(|i| rt.spawn(move || i * 3)).collect();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::yield_now();
    }
    drop(rt);
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 3 * 99 * 100 / 2);
}

/// Pushes its label to a shared log when dropped.
struct Rec(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl Drop for Rec {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

/// A coroutine owning a scope whose children park forever; the runtime is dropped
/// and the order in which owner and children unwind is checked. With
/// `owner_from_new_thread`, the worker spawns something first and the owner is then
/// spawned from a thread that never spawned before.
fn scoped_children_unwind_before_owner(workers: usize, owner_from_new_thread: bool) {
    const CHILDREN: usize = 40;
    let rt = corun::Runtime::builder().workers(workers).build().unwrap();
    if owner_from_new_thread {
        rt.block_on(|| corun::spawn(|| ()).join().unwrap());
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let (log2, started2) = (log.clone(), started.clone());
    // With several workers, children that start on the owner's thread hold it (up to a
    // deadline) until one has started elsewhere, so that the children are spread.
    let spread = workers > 1;
    let give_up = Instant::now() + Duration::from_secs(10);
    let elsewhere = Arc::new(AtomicBool::new(false));
    let body = move || {
        let _owner = Rec("owner", log2.clone());
        let owner_thread = std::thread::current().id();
        let borrowed = vec![1u64; 16];
        corun::scope(|s| {
            for _ in 0..CHILDREN {
                let (log, started, borrowed) = (log2.clone(), started2.clone(), &borrowed);
                let elsewhere = elsewhere.clone();
                s.spawn(move || {
                    let _child = Rec("child", log);
                    if std::thread::current().id() != owner_thread {
                        elsewhere.store(true, Ordering::SeqCst);
                    }
                    while spread && !elsewhere.load(Ordering::SeqCst) && Instant::now() < give_up {
                        std::thread::yield_now();
                    }
                    started.fetch_add(1, Ordering::SeqCst);
                    loop {
                        corun::park();
                        // Touches the owner's stack whenever it wakes.
                        assert_eq!(borrowed.iter().sum::<u64>(), 16);
                    }
                });
            }
        });
    };
    let owner = if owner_from_new_thread {
        let handle = rt.handle().clone();
        std::thread::spawn(move || handle.spawn(body))
            .join()
            .unwrap()
    } else {
        rt.spawn(body)
    };
    while started.load(Ordering::SeqCst) < CHILDREN {
        std::thread::yield_now();
    }
    drop(rt);
    let r = owner.join();
    assert!(r.is_err(), "the owner was not unwound");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), CHILDREN + 1, "{log:?}");
    assert_eq!(
        log.last(),
        Some(&"owner"),
        "the owner unwound before its scoped children: {log:?}"
    );
}

#[test]
fn scoped_children_unwind_before_their_owner_on_one_worker() {
    scoped_children_unwind_before_owner(1, false);
}

#[test]
fn scoped_children_unwind_before_their_owner_spawned_from_a_new_thread() {
    scoped_children_unwind_before_owner(1, true);
}

#[test]
fn scoped_children_unwind_before_their_owner_on_two_workers() {
    for _ in 0..20 {
        scoped_children_unwind_before_owner(2, false);
    }
}

#[test]
fn a_dropped_runtime_refuses_spawns_without_hanging() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    assert_eq!(rt.block_on(|| 1), 1);
    drop(rt);
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let err = corun::Builder::new()
        .spawn_on(&handle, move || ran2.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert!(
        err.to_string().contains("shutting down"),
        "unexpected error: {err}"
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.spawn(|| ())));
    assert!(r.is_err(), "Handle::spawn on a dropped runtime must panic");
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn dropping_a_runtime_from_its_own_coroutine_does_not_deadlock() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let rt = Arc::new(Mutex::new(Some(rt)));
    let inner = rt.clone();
    let h = rt.lock().unwrap().as_ref().unwrap().spawn(move || {
        // Leaked with a message rather than joining its own thread.
        drop(inner.lock().unwrap().take());
        "returned"
    });
    assert_eq!(h.join().unwrap(), "returned");
}
