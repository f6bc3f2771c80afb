//! Coroutines and threads: joining from either, waking from a plain thread, yield
//! fairness, and the rule that a started coroutine never changes thread.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

#[test]
fn join_from_a_plain_thread_and_from_a_coroutine() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let a = rt.spawn(|| {
        corun::yield_now();
        String::from("from a")
    });
    let b = rt.spawn(|| {
        corun::sleep(Duration::from_millis(5));
        41u32
    });
    let t = std::thread::spawn(move || a.join().unwrap());
    let c = rt.spawn(move || b.join().unwrap() + 1);
    assert_eq!(t.join().unwrap(), "from a");
    assert_eq!(c.join().unwrap(), 42);
}

#[test]
fn join_a_coroutine_that_a_plain_thread_unparks() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let parks = Arc::new(AtomicUsize::new(0));
    let (f, p) = (flag.clone(), parks.clone());
    let h = rt.spawn(move || {
        while !f.load(Ordering::Acquire) {
            p.fetch_add(1, Ordering::SeqCst);
            corun::park();
        }
        "woken"
    });
    // It parks at least once, and cannot finish before the flag is set.
    while parks.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    assert!(!h.is_finished());
    let co = h.coroutine();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::Release);
        co.unpark();
    });
    assert_eq!(h.join().unwrap(), "woken");
    waker.join().unwrap();
}

#[test]
fn unpark_before_park_is_not_lost() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let h = rt.spawn(|| {
        // The token from our own unpark makes the next park return at once.
        corun::current().unpark();
        corun::park();
        "not stuck"
    });
    assert_eq!(h.join().unwrap(), "not stuck");
}

#[test]
fn many_coroutines_woken_by_many_threads() {
    const N: usize = 500;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let flags: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let flags = flags.clone();
            rt.spawn(move || {
                while !flags[i].load(Ordering::Acquire) {
                    corun::park();
                }
                i
            })
        })
        .collect();
    let cos: Vec<_> = handles.iter().map(|h| h.coroutine()).collect();
    let wakers: Vec<_> = (0..4)
        .map(|t| {
            let flags = flags.clone();
            let cos = cos.clone();
            std::thread::spawn(move || {
                for i in (t..N).step_by(4) {
                    flags[i].store(true, Ordering::Release);
                    cos[i].unpark();
                }
            })
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i);
    }
}

#[test]
fn park_timeout_returns_without_unpark() {
    let h = corun::spawn(|| {
        corun::park_timeout(Duration::from_millis(10));
        "returned"
    });
    assert_eq!(h.join().unwrap(), "returned");
}

#[test]
fn yield_now_interleaves_two_coroutines_on_one_worker() {
    const ROUNDS: usize = 100;
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::with_capacity(2 * ROUNDS)));
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = ['a', 'b']
        .into_iter()
        .map(|tag| {
            let log = log.clone();
            let ready = ready.clone();
            rt.spawn(move || {
                // Start together, so neither finishes before the other began.
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 2 {
                    corun::yield_now();
                }
                for _ in 0..ROUNDS {
                    log.lock().unwrap().push(tag);
                    corun::yield_now();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2 * ROUNDS);
    // Run lengths of equal tags, ignoring the first and last run.
    let mut runs = Vec::new();
    let mut len = 1;
    for w in log.windows(2) {
        if w[0] == w[1] {
            len += 1;
        } else {
            runs.push(len);
            len = 1;
        }
    }
    runs.push(len);
    let interior = &runs[1..runs.len().saturating_sub(1)];
    let longest = interior.iter().copied().max().unwrap_or(0);
    assert!(
        runs.len() >= ROUNDS,
        "they barely interleaved: {} runs in {:?}",
        runs.len(),
        String::from_iter(log.iter())
    );
    assert!(
        longest <= 3,
        "a run of {longest} equal tags: {:?}",
        String::from_iter(log.iter())
    );
}

#[test]
fn started_coroutines_stay_on_their_thread_while_unstarted_ones_are_stolen() {
    const N: usize = 200;
    const STEPS: usize = 50;
    let rt = corun::Runtime::builder()
        .workers(2)
        .extra_threads(0) // two threads, even if sysmon sees a worker descheduled
        .name("steal")
        .build()
        .unwrap();
    // Until some coroutine has run on another worker, the ones that start on the
    // spawner's worker hold that thread (up to a deadline), so the rest can only run
    // if the other worker wakes up and steals them.
    let give_up = Instant::now() + Duration::from_secs(10);
    let elsewhere = Arc::new(AtomicBool::new(false));
    let root = rt.spawn(move || {
        let spawner = std::thread::current().id();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let elsewhere = elsewhere.clone();
                corun::spawn(move || {
                    let first: ThreadId = std::thread::current().id();
                    if first == spawner {
                        while !elsewhere.load(Ordering::SeqCst) && Instant::now() < give_up {
                            std::thread::yield_now();
                        }
                    } else {
                        elsewhere.store(true, Ordering::SeqCst);
                    }
                    let name = std::thread::current().name().map(str::to_owned);
                    let mut moved = 0;
                    for step in 0..STEPS {
                        corun::yield_now();
                        if (step + i) % 5 == 0 {
                            corun::sleep(Duration::from_micros(300));
                        }
                        if std::thread::current().id() != first {
                            moved += 1;
                        }
                    }
                    (first, name, moved)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let results = root.join().unwrap();
    assert_eq!(results.len(), N);
    let mut threads = HashSet::new();
    for (i, (tid, name, moved)) in results.iter().enumerate() {
        assert_eq!(*moved, 0, "coroutine {i} changed thread {moved} times");
        let name = name.as_deref().unwrap_or("");
        assert!(
            name.starts_with("steal-worker-"),
            "coroutine {i} ran on thread {name:?}"
        );
        threads.insert(*tid);
    }
    let m = rt.metrics();
    assert_eq!(
        threads.len(),
        2,
        "all {N} coroutines ran on one worker: the idle one never stole; {m:?}"
    );
    let stolen: u64 = m.workers.iter().map(|w| w.stolen).sum();
    assert!(stolen > 0, "metrics show no steal: {m:?}");
    let started: u64 = m.workers.iter().map(|w| w.started).sum();
    assert_eq!(started, N as u64 + 1);
}

#[test]
fn block_on_runs_on_the_runtime_and_reraises_panics() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .name("blk")
        .build()
        .unwrap();
    let name = rt.block_on(|| std::thread::current().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("blk-worker-0"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| -> u32 { panic!("inside block_on") })
    }));
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"inside block_on")
    );
    // The runtime still works.
    assert_eq!(rt.block_on(|| 9), 9);
}
