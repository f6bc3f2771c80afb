//! Scoped coroutines: borrowing the caller's stack, and panics inside a scope.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn scoped_coroutines_mutate_disjoint_parts_and_read_shared_str() {
    let text: &str = "corun-scope";
    let mut data: Vec<u64> = (0..1000).collect();
    let total = corun::scope(|s| {
        let handles: Vec<_> = data
            .chunks_mut(100)
            .enumerate()
            .map(|(c, chunk)| {
                s.spawn(move || {
                    let mut sum = 0;
                    for (j, x) in chunk.iter_mut().enumerate() {
                        if j % 10 == 0 {
                            corun::yield_now();
                        }
                        *x = *x * 2 + text.len() as u64;
                        sum += *x;
                    }
                    (c, sum)
                })
            })
            .collect();
        let mut total = 0;
        for (i, h) in handles.into_iter().enumerate() {
            let (c, sum) = h.join().unwrap();
            assert_eq!(c, i);
            total += sum;
        }
        total
    });
    let want: Vec<u64> = (0..1000).map(|x| x * 2 + text.len() as u64).collect();
    assert_eq!(data, want);
    assert_eq!(total, want.iter().sum::<u64>());
}

#[test]
fn scope_returns_only_after_unjoined_children_end() {
    let mut counts = [0u32; 8];
    let finished = AtomicUsize::new(0);
    corun::scope(|s| {
        for (i, c) in counts.iter_mut().enumerate() {
            let finished = &finished;
            s.spawn(move || {
                for _ in 0..i * 3 {
                    corun::yield_now();
                }
                corun::sleep(std::time::Duration::from_millis(i as u64));
                *c = i as u32 + 1;
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Nobody is joined here.
    });
    assert_eq!(finished.load(Ordering::SeqCst), 8);
    assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn scope_inside_a_coroutine_borrows_its_stack() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let got = rt.block_on(|| {
        let mut parts = vec![0u64; 64];
        let base = 10u64;
        corun::scope(|s| {
            for (i, p) in parts.iter_mut().enumerate() {
                let base = &base;
                s.spawn(move || {
                    corun::yield_now();
                    *p = *base + i as u64;
                });
            }
        });
        parts
    });
    assert_eq!(got, (0..64).map(|i| 10 + i).collect::<Vec<u64>>());
}

#[test]
fn a_panicking_scoped_child_makes_scope_panic_after_all_children_end() {
    const OTHERS: usize = 16;
    let done = AtomicUsize::new(0);
    let mut slots = [false; OTHERS];
    let panicked_child_ran = AtomicBool::new(false);
    let r = catch_unwind(AssertUnwindSafe(|| {
        corun::scope(|s| {
            s.spawn(|| {
                panicked_child_ran.store(true, Ordering::SeqCst);
                panic!("scoped child fails");
            });
            for (i, slot) in slots.iter_mut().enumerate() {
                let done = &done;
                s.spawn(move || {
                    // Outlive the panicking child.
                    for _ in 0..20 {
                        corun::yield_now();
                    }
                    corun::sleep(std::time::Duration::from_millis(2 + i as u64));
                    *slot = true;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    assert!(
        r.is_err(),
        "scope must panic when an unjoined child panicked"
    );
    assert!(panicked_child_ran.load(Ordering::SeqCst));
    assert_eq!(
        done.load(Ordering::SeqCst),
        OTHERS,
        "scope panicked before its other children ended"
    );
    assert!(slots.iter().all(|&b| b));
}

#[test]
fn a_joined_panicking_child_gives_err_and_scope_does_not_panic() {
    let r = corun::scope(|s| {
        let bad = s.spawn(|| -> u32 { panic!("joined failure") });
        let good = s.spawn(|| 3u32);
        let e = bad.join().unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"joined failure"));
        good.join().unwrap()
    });
    assert_eq!(r, 3);
}

#[test]
fn a_panic_in_the_scope_closure_waits_for_children_then_propagates() {
    let done = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        corun::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    corun::sleep(std::time::Duration::from_millis(20));
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("owner fails");
        })
    }));
    let e = r.unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"owner fails"));
    assert_eq!(done.load(Ordering::SeqCst), 4);
}
