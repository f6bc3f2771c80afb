//! `JoinHandle::cancel`: a cancelled coroutine unwinds from its next cancellation
//! point (park, sleep, yield, join), running its destructors; `join` gives
//! `Cancelled`; unstarted ones never run; finished ones keep their result.

use corun::{Cancelled, Generator};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::wait_for;

mod support;

/// Counts its drops.
struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn is_cancelled<T>(r: &std::thread::Result<T>) -> bool {
    matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some())
}

/// How long `wait_for` waits.
const PATIENCE: Duration = Duration::from_secs(10);

/// Spawns `f` and returns once it has started running (so a cancel cannot find it
/// unstarted).
fn spawn_started<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> corun::JoinHandle<T> {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = corun::spawn(move || {
        s.store(true, Ordering::SeqCst);
        f()
    });
    wait_for("the coroutine to start", PATIENCE, || {
        started.load(Ordering::SeqCst)
    });
    h
}

/// Spawns a coroutine holding a guard, lets it reach `wait`, cancels it, and checks
/// that the guard dropped and `join` gives `Cancelled`.
fn cancel_while(wait: impl FnOnce() + Send + 'static) {
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let (g, s, a) = (Guard(drops.clone()), started.clone(), after.clone());
    let h = corun::spawn(move || {
        let _g = g;
        s.store(true, Ordering::SeqCst);
        wait();
        a.store(true, Ordering::SeqCst);
    });
    wait_for("the coroutine to start", PATIENCE, || {
        started.load(Ordering::SeqCst)
    });
    std::thread::sleep(Duration::from_millis(5)); // let it get into `wait`
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    let t = Instant::now();
    assert!(h.cancel());
    let r = h.join();
    assert!(is_cancelled(&r), "join gave {:?}", r.is_ok());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "cancel did not wake it"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1, "destructors ran once");
    assert!(!after.load(Ordering::SeqCst), "the wait returned");
}

#[test]
fn cancel_a_parked_coroutine() {
    cancel_while(|| loop {
        corun::park();
    });
}

#[test]
fn cancel_a_coroutine_parked_with_timeout() {
    cancel_while(|| loop {
        corun::park_timeout(Duration::from_secs(3600));
    });
}

#[test]
fn cancel_a_sleeping_coroutine() {
    cancel_while(|| corun::sleep(Duration::from_secs(3600)));
}

#[test]
fn cancel_a_yielding_coroutine() {
    cancel_while(|| loop {
        corun::yield_now();
    });
}

#[test]
fn cancel_a_joining_coroutine() {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let waited_on = corun::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            corun::park();
        }
        "ended normally"
    });
    let other = waited_on.coroutine();
    cancel_while(move || {
        let _ = waited_on.join();
    });
    // The coroutine it was joining is not affected (its handle was dropped).
    stop.store(true, Ordering::SeqCst);
    other.unpark();

    // join is a cancellation point even when the other one has already ended.
    let done = corun::spawn(|| 1);
    while !done.is_finished() {
        std::thread::yield_now();
    }
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let h = spawn_started(move || {
        while !g.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        done.join().unwrap()
    });
    h.cancel();
    go.store(true, Ordering::SeqCst);
    assert!(is_cancelled(&h.join()));
}

#[test]
fn cancel_a_busy_coroutine_at_its_next_point() {
    let go = Arc::new(AtomicBool::new(false));
    let reached = Arc::new(AtomicUsize::new(0));
    let (g, r) = (go.clone(), reached.clone());
    let h = spawn_started(move || {
        // No cancellation point in here: cancel cannot interrupt it.
        while !g.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        r.fetch_add(1, Ordering::SeqCst);
        corun::yield_now(); // the first point: unwinds
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(h.cancel());
    go.store(true, Ordering::SeqCst);
    assert!(is_cancelled(&h.join()));
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[test]
fn cancel_an_unstarted_coroutine() {
    // One worker, kept busy without cancellation points, so the second coroutine
    // cannot start before it is cancelled.
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let busy_running = Arc::new(AtomicBool::new(false));
    let (rel, br) = (release.clone(), busy_running.clone());
    let busy = rt.spawn(move || {
        br.store(true, Ordering::SeqCst);
        while !rel.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    });
    wait_for("the busy coroutine", PATIENCE, || {
        busy_running.load(Ordering::SeqCst)
    });
    let ran = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let (r, g) = (ran.clone(), Guard(drops.clone()));
    let h = rt.spawn(move || {
        let _g = g;
        r.store(true, Ordering::SeqCst);
    });
    assert!(h.cancel());
    release.store(true, Ordering::SeqCst);
    busy.join().unwrap();
    assert!(is_cancelled(&h.join()));
    assert!(!ran.load(Ordering::SeqCst), "a cancelled coroutine started");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "its closure was dropped");
}

#[test]
fn cancel_a_finished_coroutine_does_nothing() {
    let h = corun::spawn(|| 42);
    while !h.is_finished() {
        std::thread::yield_now();
    }
    assert!(!h.cancel());
    assert!(!h.cancel());
    assert_eq!(h.join().unwrap(), 42);

    // A coroutine that returns without reaching a cancellation point keeps its
    // result even if it was asked to stop.
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let h = spawn_started(move || {
        while !g.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        "finished anyway"
    });
    assert!(h.cancel());
    go.store(true, Ordering::SeqCst);
    assert_eq!(h.join().unwrap(), "finished anyway");
}

#[test]
fn cancel_twice_is_harmless() {
    cancel_while(|| loop {
        corun::park();
    });
    let h = corun::spawn(|| loop {
        corun::park();
    });
    assert!(h.cancel());
    h.cancel();
    h.cancel();
    assert!(is_cancelled(&h.join()));
}

#[test]
fn caught_cancellation_is_raised_again() {
    let caught = Arc::new(AtomicUsize::new(0));
    let after_second = Arc::new(AtomicBool::new(false));
    let (c, a) = (caught.clone(), after_second.clone());
    let h = spawn_started(move || {
        let r = catch_unwind(|| loop {
            corun::park();
        });
        let e = r.unwrap_err();
        assert!(e.downcast_ref::<Cancelled>().is_some());
        c.fetch_add(1, Ordering::SeqCst);
        // Carrying on: the flag stays set, so the next point raises it again.
        corun::sleep(Duration::from_millis(1));
        a.store(true, Ordering::SeqCst);
    });
    std::thread::sleep(Duration::from_millis(5));
    h.cancel();
    assert!(is_cancelled(&h.join()));
    assert_eq!(caught.load(Ordering::SeqCst), 1);
    assert!(!after_second.load(Ordering::SeqCst));
}

#[test]
fn points_do_nothing_while_unwinding() {
    // A destructor that yields and sleeps while its coroutine is being cancelled:
    // the calls work normally instead of raising again (which would abort).
    struct SlowDrop(Arc<AtomicUsize>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            corun::yield_now();
            corun::sleep(Duration::from_millis(2));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let h = spawn_started(move || {
        let _s = SlowDrop(d);
        loop {
            corun::park();
        }
    });
    std::thread::sleep(Duration::from_millis(5));
    h.cancel();
    assert!(is_cancelled(&h.join()));
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelling_releases_a_held_lock() {
    // (A std Mutex stands in for corun::sync::Mutex, which comes with the sync module.)
    let lock = Arc::new(Mutex::new(0u32));
    let l = lock.clone();
    let holding = Arc::new(AtomicBool::new(false));
    let hd = holding.clone();
    let h = corun::spawn(move || {
        let mut guard = l.lock().unwrap();
        *guard += 1;
        hd.store(true, Ordering::SeqCst);
        corun::sleep(Duration::from_secs(3600));
        *guard += 100;
    });
    wait_for("the holder", PATIENCE, || holding.load(Ordering::SeqCst));
    assert!(lock.try_lock().is_err(), "held by the coroutine");
    h.cancel();
    assert!(is_cancelled(&h.join()));
    // Released by the unwind (std marks the lock poisoned, as for any unwind).
    let v = match lock.try_lock() {
        Ok(g) => *g,
        Err(std::sync::TryLockError::Poisoned(p)) => *p.into_inner(),
        Err(e) => panic!("lock still held: {e}"),
    };
    assert_eq!(v, 1);
}

#[test]
fn cancellation_prints_nothing() {
    // The unwind starts with resume_unwind: no panic hook runs. Count hook calls
    // (no other test of this binary panics).
    static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    let hs: Vec<_> = (0..20)
        .map(|_| {
            corun::spawn(|| loop {
                corun::park();
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    for h in &hs {
        h.cancel();
    }
    for h in hs {
        assert!(is_cancelled(&h.join()));
    }
    let calls = HOOK_CALLS.load(Ordering::SeqCst);
    std::panic::set_hook(prev);
    assert_eq!(calls, 0);
}

#[test]
fn cancel_from_another_coroutine() {
    let drops = Arc::new(AtomicUsize::new(0));
    let g = Guard(drops.clone());
    let victim = corun::spawn(move || {
        let _g = g;
        loop {
            corun::sleep(Duration::from_millis(1));
        }
    });
    let killer = corun::spawn(move || {
        corun::sleep(Duration::from_millis(5));
        assert!(victim.cancel());
        victim.join()
    });
    let r = killer.join().unwrap();
    assert!(is_cancelled(&r));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn cancel_many_parked_and_sleeping() {
    let drops = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..500)
        .map(|i| {
            let g = Guard(drops.clone());
            corun::spawn(move || {
                let _g = g;
                if i % 2 == 0 {
                    loop {
                        corun::park();
                    }
                } else {
                    corun::sleep(Duration::from_secs(3600));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    for h in &hs {
        h.cancel();
    }
    for h in hs {
        assert!(is_cancelled(&h.join()));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 500);
}

#[test]
fn cancel_unwinds_a_suspended_generator_too() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let h = spawn_started(move || {
        let _outer = Guard(d.clone());
        let mut g = Generator::new(move |co| {
            let _inner = Guard(d);
            loop {
                co.yield_(1);
            }
        });
        g.next();
        loop {
            corun::park();
        }
    });
    std::thread::sleep(Duration::from_millis(5));
    h.cancel();
    assert!(is_cancelled(&h.join()));
    assert_eq!(drops.load(Ordering::SeqCst), 2, "both stacks unwound");
}

#[test]
fn cancel_reaches_into_a_running_generator() {
    // The coroutine parks from inside a generator's body: the unwind starts on the
    // generator's stack, crosses its root and continues in the coroutine.
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let h = spawn_started(move || {
        let _outer = Guard(d.clone());
        let mut g = Generator::new(move |co| {
            let _inner = Guard(d);
            co.yield_(0);
            loop {
                corun::park();
            }
        });
        g.next();
        g.next();
    });
    std::thread::sleep(Duration::from_millis(5));
    h.cancel();
    assert!(is_cancelled(&h.join()));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn cancel_scoped_coroutines() {
    let drops = Arc::new(AtomicUsize::new(0));
    let local = String::from("borrowed");
    corun::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let g = Guard(drops.clone());
                let local = &local;
                s.spawn(move || {
                    let _g = g;
                    assert_eq!(local, "borrowed");
                    loop {
                        corun::park();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5));
        for (i, h) in hs.into_iter().enumerate() {
            h.cancel();
            if i % 2 == 0 {
                assert!(is_cancelled(&h.join()));
            } // the others end with the scope, which does not panic for them
        }
    });
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn cancel_is_not_lost_while_another_coroutine_unwinds() {
    // std::thread::panicking() is per thread: while A is suspended in the middle of
    // its unwind (its destructor sleeps), B on the same worker sees it true too.
    // B's cancellation must still happen.
    struct SleepyDrop(Arc<AtomicBool>);
    impl Drop for SleepyDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
            corun::sleep(Duration::from_millis(200));
        }
    }
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (b_started, a_dropping) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let bs = b_started.clone();
    let b = rt.spawn(move || {
        bs.store(true, Ordering::SeqCst);
        loop {
            corun::park();
        }
    });
    let ad = a_dropping.clone();
    let a = rt.spawn(move || {
        let _d = SleepyDrop(ad);
        loop {
            corun::park();
        }
    });
    wait_for("b to start", PATIENCE, || b_started.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(5));
    a.cancel();
    wait_for("a's destructor", PATIENCE, || {
        a_dropping.load(Ordering::SeqCst)
    });
    let t = Instant::now();
    b.cancel();
    wait_for("b to finish", PATIENCE, || b.is_finished());
    assert!(is_cancelled(&b.join()));
    assert!(is_cancelled(&a.join()));
    assert!(t.elapsed() < Duration::from_secs(5));
}
