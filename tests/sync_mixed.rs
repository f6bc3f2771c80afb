//! corun::sync under many coroutines and plain threads at once, with checksums.

use corun::sync::{Barrier, Condvar, Mutex, OnceLock, RwLock, Semaphore, WaitGroup};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rt() -> corun::Runtime {
    corun::Runtime::builder().workers(2).build().unwrap()
}

/// Runs `body(i)` in `coroutines` coroutines and `threads` plain threads, joins all.
fn mixed(
    rt: &corun::Runtime,
    coroutines: usize,
    threads: usize,
    body: impl Fn(usize) + Send + Sync + 'static,
) {
    let body = Arc::new(body);
    let hs: Vec<_> = (0..coroutines)
        .map(|i| {
            let b = body.clone();
            rt.spawn(move || b(i))
        })
        .collect();
    let ts: Vec<_> = (0..threads)
        .map(|i| {
            let b = body.clone();
            std::thread::spawn(move || b(coroutines + i))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    for t in ts {
        t.join().unwrap();
    }
}

#[test]
fn mutex_counts_exactly() {
    let rt = rt();
    let m = Arc::new(Mutex::new((0u64, 0u64)));
    let m2 = m.clone();
    mixed(&rt, 200, 4, move |i| {
        for k in 0..2000u64 {
            let mut g = m2.lock();
            g.0 += 1;
            g.1 += i as u64 * k;
            if k % 97 == 0 {
                corun::yield_now(); // park-free yield while holding the lock
            }
        }
    });
    let want: u64 = (0..204u64).map(|i| i * (0..2000u64).sum::<u64>()).sum();
    let g = m.lock();
    assert_eq!(*g, (204 * 2000, want));
}

#[test]
fn try_lock_and_lock_mix() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0u64));
    let got = Arc::new(AtomicUsize::new(0));
    let (m2, got2) = (m.clone(), got.clone());
    mixed(&rt, 50, 2, move |_| {
        for _ in 0..1000 {
            match m2.try_lock() {
                Some(mut g) => {
                    *g += 1;
                    got2.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    *m2.lock() += 1;
                    got2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    assert_eq!(*m.lock(), 52_000);
    assert_eq!(got.load(Ordering::Relaxed), 52_000);
}

#[test]
fn rwlock_readers_see_consistent_pairs() {
    let rt = rt();
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let l2 = l.clone();
    mixed(&rt, 100, 4, move |i| {
        for k in 0..500 {
            if (i + k) % 5 == 0 {
                let mut g = l2.write();
                g.0 += 1;
                corun::yield_now();
                g.1 += 2;
            } else {
                let g = l2.read();
                assert_eq!(g.1, 2 * g.0, "reader saw a half-done write");
            }
        }
    });
    let g = l.read();
    assert_eq!(g.0 * 2, g.1);
    assert_eq!(g.0, 104 * 500 / 5);
}

#[test]
fn semaphore_bounds_concurrency() {
    let rt = rt();
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (s2, in2, t2) = (sem.clone(), inside.clone(), total.clone());
    mixed(&rt, 100, 4, move |_| {
        for _ in 0..200 {
            let _p = s2.acquire();
            let n = in2.fetch_add(1, Ordering::SeqCst);
            assert!(n < 3, "{} holders", n + 1);
            corun::yield_now();
            in2.fetch_sub(1, Ordering::SeqCst);
            t2.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), 104 * 200);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn condvar_bounded_queue() {
    // A bounded queue on Mutex + two Condvars: producers and consumers mixed.
    struct Q {
        items: Mutex<VecDeque<u64>>,
        not_empty: Condvar,
        not_full: Condvar,
    }
    const CAP: usize = 8;
    const PER: u64 = 1000;
    let rt = rt();
    let q = Arc::new(Q {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let sum = Arc::new(AtomicUsize::new(0));
    let (q2, sum2) = (q.clone(), sum.clone());
    // 60 participants: even ones produce PER items, odd ones consume PER items.
    mixed(&rt, 56, 4, move |i| {
        for k in 0..PER {
            if i % 2 == 0 {
                let mut g = q2.items.lock();
                q2.not_full.wait_while(&mut g, |it| it.len() >= CAP);
                g.push_back(i as u64 * PER + k);
                drop(g);
                q2.not_empty.notify_one();
            } else {
                let mut g = q2.items.lock();
                q2.not_empty.wait_while(&mut g, |it| it.is_empty());
                let v = g.pop_front().unwrap();
                drop(g);
                q2.not_full.notify_one();
                sum2.fetch_add(v as usize, Ordering::Relaxed);
            }
        }
    });
    let want: u64 = (0..60u64)
        .step_by(2)
        .map(|i| (0..PER).map(|k| i * PER + k).sum::<u64>())
        .sum();
    assert_eq!(sum.load(Ordering::Relaxed) as u64, want);
    assert!(q.items.lock().is_empty());
}

#[test]
fn condvar_notify_all_and_timeout() {
    let rt = rt();
    let st = Arc::new((Mutex::new(false), Condvar::new()));
    let woke = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..50 {
        let (st, woke) = (st.clone(), woke.clone());
        hs.push(rt.spawn(move || {
            let mut g = st.0.lock();
            while !*g {
                st.1.wait(&mut g);
            }
            woke.fetch_add(1, Ordering::SeqCst);
        }));
    }
    std::thread::sleep(Duration::from_millis(20));
    *st.0.lock() = true;
    st.1.notify_all();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(woke.load(Ordering::SeqCst), 50);
    // Timeouts from a coroutine and a thread.
    let st2 = st.clone();
    let h = rt.spawn(move || {
        let mut g = st2.0.lock();
        st2.1
            .wait_timeout(&mut g, Duration::from_millis(5))
            .timed_out()
    });
    assert!(h.join().unwrap());
    let mut g = st.0.lock();
    assert!(st
        .1
        .wait_timeout(&mut g, Duration::from_millis(5))
        .timed_out());
}

#[test]
fn waitgroup_waits_for_all() {
    let rt = rt();
    for round in 0..20 {
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for i in 0..100 {
            wg.add(1);
            let (wg, n) = (wg.clone(), n.clone());
            if i % 10 == 0 {
                std::thread::spawn(move || {
                    n.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            } else {
                rt.spawn(move || {
                    corun::yield_now();
                    n.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
        }
        // Waiters: this thread and a coroutine.
        let (wg2, n2) = (wg.clone(), n.clone());
        let w = rt.spawn(move || {
            wg2.wait();
            n2.load(Ordering::SeqCst)
        });
        wg.wait();
        assert_eq!(n.load(Ordering::SeqCst), 100, "round {round}");
        assert_eq!(w.join().unwrap(), 100);
    }
}

#[test]
fn barrier_rounds_have_one_leader() {
    let rt = rt();
    const PARTIES: usize = 40;
    const ROUNDS: usize = 50;
    let b = Arc::new(Barrier::new(PARTIES));
    let leaders = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (b2, l2, a2) = (b.clone(), leaders.clone(), arrived.clone());
    mixed(&rt, PARTIES - 4, 4, move |_| {
        for r in 0..ROUNDS {
            a2.fetch_add(1, Ordering::SeqCst);
            if b2.wait().is_leader() {
                l2.fetch_add(1, Ordering::SeqCst);
            }
            // Nobody passes round r before all arrived at it.
            assert!(a2.load(Ordering::SeqCst) >= (r + 1) * PARTIES);
        }
    });
    assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS);
}

#[test]
fn once_lock_runs_init_once_while_others_park() {
    let rt = rt();
    for _ in 0..20 {
        let cell = Arc::new(OnceLock::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (c2, r2) = (cell.clone(), runs.clone());
        mixed(&rt, 50, 2, move |_| {
            let v = c2.get_or_init(|| {
                r2.fetch_add(1, Ordering::SeqCst);
                corun::sleep(Duration::from_millis(2)); // others park meanwhile
                42u64
            });
            assert_eq!(*v, 42);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn once_lock_retries_after_a_panicking_init() {
    let cell = Arc::new(OnceLock::new());
    let c = cell.clone();
    let h = corun::spawn(move || {
        c.get_or_init(|| -> u32 { panic!("first init fails") });
    });
    assert!(h.join().is_err());
    assert!(cell.get().is_none());
    assert_eq!(*cell.get_or_init(|| 9), 9);
}
