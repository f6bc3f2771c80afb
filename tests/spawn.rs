//! Spawning and joining many coroutines, nested spawns, coroutine identity, and
//! `coroutine_local!`.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod support;

/// Under AddressSanitizer (`.ci/sanitize` sets `CORUN_SANITIZER`) a million
/// coroutines need tens of GB: ASan unpoisons each stack's shadow as its coroutine
/// ends, and its allocator keeps a quarantine. Those tests skip there.
fn skip_under_asan(name: &str) -> bool {
    let asan = support::under_asan();
    if asan {
        eprintln!("SKIPPED {name}: too much memory under AddressSanitizer");
    }
    asan
}

/// A value that depends on `i` in a way a lost or duplicated result would show.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ i
}

#[test]
fn spawn_and_join_100k_on_the_default_runtime() {
    const N: u64 = 100_000;
    let handles: Vec<_> = (0..N).map(|i| corun::go!(move || mix(i))).collect();
    let mut got = 0u64;
    for h in handles {
        got = got.wrapping_add(h.join().expect("coroutine panicked"));
    }
    let want = (0..N).fold(0u64, |a, i| a.wrapping_add(mix(i)));
    assert_eq!(got, want);
}

#[test]
fn one_million_spawned_then_joined_on_two_workers() {
    if skip_under_asan("one_million_spawned_then_joined_on_two_workers") {
        return;
    }
    const N: u64 = 1_000_000;
    const BATCH: u64 = 100_000;
    let rt = corun::Runtime::builder()
        .workers(2)
        .extra_threads(0)
        .build()
        .unwrap();
    let mut sum = 0u64;
    let mut batch_start = 0;
    while batch_start < N {
        let handles: Vec<_> = (batch_start..batch_start + BATCH)
            .map(|i| rt.spawn(move || i))
            .collect();
        for h in handles {
            sum += h.join().expect("coroutine panicked");
        }
        batch_start += BATCH;
    }
    assert_eq!(sum, N * (N - 1) / 2);
    // A joiner may wake before the worker has counted the coroutine finished.
    let m = support::wait_until_idle(&rt);
    assert_eq!(m.workers.len(), 2);
    let started: u64 = m.workers.iter().map(|w| w.started).sum();
    let finished: u64 = m.workers.iter().map(|w| w.finished).sum();
    assert_eq!(started, N);
    assert_eq!(finished, N);
    assert_eq!(m.live, 0);
}

#[test]
fn one_million_spawned_from_a_coroutine_then_joined() {
    if skip_under_asan("one_million_spawned_from_a_coroutine_then_joined") {
        return;
    }
    const N: u64 = 1_000_000;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let sum = rt.block_on(|| {
        let mut sum = 0u64;
        for batch in 0..10u64 {
            let handles: Vec<_> = (0..N / 10)
                .map(|i| {
                    let v = batch * (N / 10) + i;
                    corun::spawn(move || v)
                })
                .collect();
            for h in handles {
                sum += h.join().expect("coroutine panicked");
            }
        }
        sum
    });
    assert_eq!(sum, N * (N - 1) / 2);
}

#[test]
fn nested_spawns_sum_up() {
    const CHILDREN: u64 = 20;
    const GRANDCHILDREN: u64 = 50;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    let root = rt.spawn(move || {
        let children: Vec<_> = (0..CHILDREN)
            .map(|c| {
                let ran = ran2.clone();
                corun::spawn(move || {
                    let grandchildren: Vec<_> = (0..GRANDCHILDREN)
                        .map(|g| {
                            let ran = ran.clone();
                            corun::spawn(move || {
                                corun::yield_now();
                                ran.fetch_add(1, Ordering::Relaxed);
                                c * 1000 + g
                            })
                        })
                        .collect();
                    let s: u64 = grandchildren.into_iter().map(|h| h.join().unwrap()).sum();
                    (s, c)
                })
            })
            .collect();
        let mut total = 0;
        for (i, h) in children.into_iter().enumerate() {
            let (s, c) = h.join().unwrap();
            assert_eq!(c, i as u64, "results came back to the wrong handle");
            let want: u64 = (0..GRANDCHILDREN).map(|g| c * 1000 + g).sum();
            assert_eq!(s, want, "child {c}");
            total += s;
        }
        total
    });
    let total = root.join().unwrap();
    let want: u64 = (0..CHILDREN)
        .flat_map(|c| (0..GRANDCHILDREN).map(move |g| c * 1000 + g))
        .sum();
    assert_eq!(total, want);
    assert_eq!(ran.load(Ordering::Relaxed) as u64, CHILDREN * GRANDCHILDREN);
}

#[test]
fn handles_report_identity_and_finish() {
    let h = corun::Builder::new()
        .name("named-one")
        .spawn(|| {
            let me = corun::current();
            (me.id(), me.name().map(str::to_owned), me.is_thread())
        })
        .unwrap();
    let id = h.coroutine().id();
    assert_eq!(h.coroutine().name(), Some("named-one"));
    assert!(!h.coroutine().is_thread());
    let (seen_id, seen_name, is_thread) = h.join().unwrap();
    assert_eq!(seen_id, id);
    assert_eq!(seen_name.as_deref(), Some("named-one"));
    assert!(!is_thread);

    let unnamed = corun::spawn(|| corun::current().name().map(str::to_owned));
    assert_ne!(unnamed.coroutine().id(), id);
    assert_eq!(unnamed.join().unwrap(), None);

    let me = corun::current();
    assert!(me.is_thread());
    assert_eq!(me.id(), corun::current().id(), "a thread keeps its id");

    // is_finished turns true once it ended, and join still gives the value.
    let h = corun::spawn(|| 5);
    while !h.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn ids_are_unique() {
    let handles: Vec<_> = (0..1000)
        .map(|_| corun::spawn(|| corun::current().id()))
        .collect();
    let mut ids: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
}

// ---- coroutine_local! ----

static LOCAL_INITS: AtomicUsize = AtomicUsize::new(0);
static LOCAL_DROPS: AtomicUsize = AtomicUsize::new(0);

struct Tracked(Cell<u64>);

impl Tracked {
    fn new() -> Tracked {
        LOCAL_INITS.fetch_add(1, Ordering::SeqCst);
        Tracked(Cell::new(u64::MAX))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LOCAL_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

corun::coroutine_local!(static TRACKED: Tracked = Tracked::new());

#[test]
fn coroutine_local_is_per_coroutine_and_dropped_at_end() {
    const USERS: u64 = 200;
    const NON_USERS: u64 = 50;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let users: Vec<_> = (0..USERS)
        .map(|i| {
            rt.spawn(move || {
                TRACKED.with(|t| {
                    assert_eq!(t.0.get(), u64::MAX, "a fresh coroutine sees a fresh value");
                    t.0.set(i);
                });
                for _ in 0..5 {
                    corun::yield_now();
                    // Other coroutines on this worker set theirs meanwhile.
                    TRACKED.with(|t| assert_eq!(t.0.get(), i));
                }
                TRACKED.with(|t| t.0.get())
            })
        })
        .collect();
    let non_users: Vec<_> = (0..NON_USERS).map(|i| rt.spawn(move || i)).collect();
    for (i, h) in users.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i as u64);
    }
    for h in non_users {
        h.join().unwrap();
    }
    // Each user made and dropped exactly one value; the others made none.
    assert_eq!(LOCAL_INITS.load(Ordering::SeqCst), USERS as usize);
    assert_eq!(LOCAL_DROPS.load(Ordering::SeqCst), USERS as usize);
}

static PANIC_LOCAL_DROPS: AtomicUsize = AtomicUsize::new(0);

struct DropFlag;

impl Drop for DropFlag {
    fn drop(&mut self) {
        PANIC_LOCAL_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

corun::coroutine_local!(static FLAG: DropFlag = DropFlag);

#[test]
fn coroutine_local_is_dropped_after_a_panic_too() {
    let h = corun::spawn(|| {
        FLAG.with(|_| ());
        panic!("local then panic");
    });
    assert!(h.join().is_err());
    assert_eq!(PANIC_LOCAL_DROPS.load(Ordering::SeqCst), 1);
}

corun::coroutine_local!(static PLAIN: Cell<u32> = Cell::new(0));

#[test]
fn coroutine_local_on_plain_threads_is_per_thread() {
    PLAIN.with(|c| c.set(7));
    let other = std::thread::spawn(|| PLAIN.with(|c| c.get()))
        .join()
        .unwrap();
    assert_eq!(other, 0);
    let in_coroutine = corun::spawn(|| PLAIN.with(|c| c.get())).join().unwrap();
    assert_eq!(in_coroutine, 0);
    assert_eq!(PLAIN.with(|c| c.get()), 7);
}
