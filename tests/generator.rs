//! Generators: send/yield/return, iteration, nesting (in generators and in
//! coroutines), panics, dropping a suspended generator, and the stack overflow
//! report of nested fibers.

use corun::{Generator, GeneratorState};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod support;

/// Records its drop in a shared log.
struct Noisy(&'static str, Rc<RefCell<Vec<&'static str>>>);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

#[test]
fn send_yield_return() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut g = Generator::new(move |co| {
        l.borrow_mut().push("started".to_string());
        let a: i32 = co.yield_("first");
        l.borrow_mut().push(format!("got {a}"));
        let b = co.yield_("second");
        l.borrow_mut().push(format!("got {b}"));
        a * b
    });
    assert_eq!(g.state(), GeneratorState::Created);
    assert!(
        log.borrow().is_empty(),
        "nothing runs before the first resume"
    );
    assert_eq!(g.send(99), Some("first")); // starts; 99 is dropped
    assert_eq!(g.state(), GeneratorState::Suspended);
    assert_eq!(g.send(6), Some("second"));
    assert_eq!(g.send(7), None);
    assert_eq!(g.state(), GeneratorState::Returned);
    assert!(g.is_finished());
    assert_eq!(g.return_value(), Some(&42));
    // Fused: more sends give None and keep the return value.
    assert_eq!(g.send(1), None);
    assert_eq!(g.return_value(), Some(&42));
    assert_eq!(*log.borrow(), ["started", "got 6", "got 7"]);
    assert_eq!(g.into_return(), Some(42));
}

#[test]
fn yield_from_nested_calls() {
    // The whole stack is the generator's: yield_ from a recursive helper.
    fn walk(co: &corun::Co<u32>, depth: u32) {
        if depth == 0 {
            return;
        }
        walk(co, depth - 1);
        co.yield_(depth);
        walk(co, depth - 1);
    }
    let g = Generator::new(|co| walk(co, 4));
    let v: Vec<u32> = g.collect();
    assert_eq!(v, [1, 2, 1, 3, 1, 2, 1, 4, 1, 2, 1, 3, 1, 2, 1]);
}

#[test]
fn iterator() {
    let squares = Generator::new(|co| {
        for i in 0..5u64 {
            co.yield_(i * i);
        }
        "done"
    });
    let mut squares = squares.map(|x| x + 1);
    assert_eq!(squares.next(), Some(1));
    assert_eq!(squares.by_ref().sum::<u64>(), 2 + 5 + 10 + 17);
    assert_eq!(squares.next(), None);
    assert_eq!(squares.next(), None);
}

#[test]
fn nested_generators() {
    // A generator that drives another one by hand, and one using yield_from.
    let mut outer = Generator::new(|co| {
        let mut inner = Generator::new(|co| {
            let mut total = 0;
            loop {
                let x: i32 = co.yield_(total);
                if x == 0 {
                    return total;
                }
                total += x;
            }
        });
        inner.resume();
        for x in 1..=4 {
            let t = inner.send(x).unwrap();
            co.yield_(t);
        }
        assert_eq!(inner.send(0), None);
        let delegated = co.yield_from(Generator::new(|co| {
            co.yield_(100);
            co.yield_(200);
            "sub done"
        }));
        assert_eq!(delegated, Some("sub done"));
        inner.into_return().unwrap()
    });
    let got: Vec<i32> = outer.by_ref().collect();
    assert_eq!(got, [1, 3, 6, 10, 100, 200]);
    assert_eq!(outer.return_value(), Some(&10));
}

#[test]
fn yield_from_forwards_sends() {
    let mut g = Generator::new(|co| {
        co.yield_from(Generator::new(|co| {
            let a: i32 = co.yield_(0);
            let b = co.yield_(a + 1);
            a + b
        }))
    });
    assert_eq!(g.resume(), Some(0));
    assert_eq!(g.send(10), Some(11));
    assert_eq!(g.send(5), None);
    assert_eq!(g.into_return(), Some(Some(15)));
}

#[test]
fn deep_nesting() {
    // 50 generators, each relaying the one below it.
    fn chain(depth: u32) -> Generator<u32> {
        Generator::new(move |co| {
            if depth == 0 {
                co.yield_(0);
                co.yield_(1);
            } else {
                for v in chain(depth - 1) {
                    co.yield_(v + 1);
                }
            }
        })
    }
    assert_eq!(chain(50).collect::<Vec<_>>(), [50, 51]);
}

#[test]
fn panic_propagates_to_the_caller() {
    let mut g = Generator::new(|co| {
        co.yield_(1);
        panic!("boom in generator");
    });
    assert_eq!(g.next(), Some(1));
    let err = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in generator"));
    assert_eq!(g.state(), GeneratorState::Panicked);
    assert_eq!(g.next(), None, "a panicked generator is finished");
    assert_eq!(g.into_return(), None);
}

#[test]
fn panic_in_a_nested_generator_crosses_both() {
    let mut outer = Generator::new(|co| {
        co.yield_(0);
        let inner = Generator::new(|co| {
            co.yield_(1);
            std::panic::panic_any(7u32);
        });
        for v in inner {
            co.yield_(v);
        }
    });
    assert_eq!(outer.next(), Some(0));
    assert_eq!(outer.next(), Some(1));
    let err = catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<u32>(), Some(&7));
    assert!(outer.is_finished());
}

#[test]
fn dropping_a_suspended_generator_runs_destructors() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut g = Generator::new(move |co| {
        let _a = Noisy("outer frame", l.clone());
        fn deeper(co: &corun::Co<i32>, l: &Rc<RefCell<Vec<&'static str>>>) {
            let _b = Noisy("inner frame", l.clone());
            co.yield_(1);
            unreachable!("never resumed");
        }
        deeper(co, &l);
    });
    assert_eq!(g.next(), Some(1));
    assert!(log.borrow().is_empty());
    drop(g);
    assert_eq!(*log.borrow(), ["inner frame", "outer frame"]);

    // An unstarted generator drops its closure, captures and all.
    let log2 = Rc::new(RefCell::new(Vec::new()));
    let n = Noisy("capture", log2.clone());
    let g = Generator::new(move |co: &corun::Co<()>| {
        let _n = n;
        co.yield_(());
    });
    drop(g);
    assert_eq!(*log2.borrow(), ["capture"]);
}

#[test]
fn dropping_nested_suspended_generators() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut outer = Generator::new(move |co| {
        let _o = Noisy("outer", l.clone());
        let l2 = l.clone();
        let mut inner = Generator::new(move |co| {
            let _i = Noisy("inner", l2);
            co.yield_(1);
            co.yield_(2);
        });
        let v = inner.next().unwrap();
        co.yield_(v);
        unreachable!();
    });
    assert_eq!(outer.next(), Some(1));
    drop(outer);
    // The outer frame unwinds, dropping `inner`, which unwinds inside it.
    assert_eq!(*log.borrow(), ["inner", "outer"]);
}

#[test]
fn stacks_are_reused_and_sizes_configurable() {
    for i in 0..1000u32 {
        let mut g = Generator::new(move |co| co.yield_(i));
        assert_eq!(g.next(), Some(i));
    }
    // A big frame needs a bigger stack than the default.
    let mut g = Generator::with_stack_size(4 << 20, |co| {
        let big = std::hint::black_box([7u8; 1 << 20]);
        co.yield_(big.iter().map(|&b| b as u64).sum::<u64>());
    })
    .unwrap();
    assert_eq!(g.next(), Some(7 << 20));
    assert!(Generator::<(), (), ()>::with_stack_size(1, |_| ()).is_err());
}

#[test]
fn generator_inside_a_coroutine() {
    let h = corun::spawn(|| {
        let me = corun::current().id();
        let mut g = Generator::new(move |co| {
            for i in 0..3 {
                // corun calls inside the generator act on the coroutine running it.
                assert_eq!(corun::current().id(), me);
                corun::yield_now();
                corun::sleep(std::time::Duration::from_millis(1));
                co.yield_(i);
            }
            "gen done"
        });
        let mut got = Vec::new();
        for v in g.by_ref() {
            corun::yield_now();
            got.push(v);
        }
        (got, g.into_return())
    });
    let (got, ret) = h.join().unwrap();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(ret, Some("gen done"));
}

#[test]
fn many_coroutines_each_with_generators() {
    let sum = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..200)
        .map(|i| {
            let sum = sum.clone();
            corun::spawn(move || {
                let g = Generator::new(move |co| {
                    for k in 0..10 {
                        if k % 3 == 0 {
                            corun::yield_now(); // switches the coroutine out from the generator's stack
                        }
                        co.yield_(i + k);
                    }
                });
                for v in g {
                    sum.fetch_add(v, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let want: usize = (0..200).map(|i| 10 * i + 45).sum();
    assert_eq!(sum.load(Ordering::Relaxed), want);
}

#[test]
fn panic_in_a_generator_inside_a_coroutine_reaches_join() {
    let h = corun::spawn(|| {
        let mut g = Generator::new(|co| {
            co.yield_(());
            panic!("generator failed");
        });
        g.next();
        g.next();
    });
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"generator failed"));
}

// ---- the overflow report with nested fibers ----
//
// Each case runs in a child process (this test binary, re-run on one test with
// `support::CHILD_ENV` naming the case) because an overflow aborts the process.

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let buf = std::hint::black_box([n as u8; 1024]);
    recurse(n + 1) + u64::from(std::hint::black_box(buf)[7])
}

fn overflow_case(case: &str) {
    match case {
        // A generator on a plain thread.
        "plain" => {
            let mut g = Generator::<u64>::with_stack_size(64 << 10, |co| {
                co.yield_(1);
                co.yield_(recurse(0));
            })
            .unwrap();
            g.next();
            g.next();
        }
        // A coroutine that ran a generator and then overflows: the coroutine's
        // name must be current again after the nested resume returned.
        "outer-after-nested" => {
            corun::Builder::new()
                .name("outer")
                .stack_size(64 << 10)
                .spawn(|| {
                    let mut g = Generator::new(|co| co.yield_(1));
                    assert_eq!(g.next(), Some(1));
                    drop(g);
                    recurse(0);
                })
                .unwrap()
                .join()
                .unwrap();
        }
        // A generator that switched its coroutine out (yield_now from the
        // generator's stack) and overflows after the coroutine came back.
        "generator-after-park" => {
            corun::Builder::new()
                .name("outer")
                .spawn(|| {
                    let mut g = Generator::<u64>::with_stack_size(64 << 10, |co| {
                        corun::yield_now();
                        corun::sleep(std::time::Duration::from_millis(1));
                        co.yield_(recurse(0));
                    })
                    .unwrap();
                    g.next();
                })
                .unwrap()
                .join()
                .unwrap();
        }
        other => panic!("unknown case {other}"),
    }
}

/// Runs `case` in a child process: `test` re-run with the case as the child's
/// variable (`support::CHILD_ENV`).
fn run_overflow_case(test: &str, case: &str) -> (std::process::ExitStatus, String) {
    let out = support::ChildTest::new(test)
        .env(support::CHILD_ENV, case)
        .output();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_overflow(test: &str, case: &str, want: &str) {
    if let Some(c) = support::child_env() {
        overflow_case(&c);
        return;
    }
    let (status, err) = run_overflow_case(test, case);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "{case}: {status:?} {err}"
    );
    assert!(err.contains(want), "{case}: stderr was: {err}");
}

#[test]
fn overflow_in_a_generator_is_reported() {
    check_overflow(
        "overflow_in_a_generator_is_reported",
        "plain",
        "coroutine generator overflowed its stack of 64 KiB",
    );
}

#[test]
fn overflow_in_a_coroutine_after_a_nested_generator_is_reported() {
    check_overflow(
        "overflow_in_a_coroutine_after_a_nested_generator_is_reported",
        "outer-after-nested",
        "coroutine outer overflowed its stack of 64 KiB",
    );
}

#[test]
fn overflow_in_a_generator_after_its_coroutine_parked_is_reported() {
    check_overflow(
        "overflow_in_a_generator_after_its_coroutine_parked_is_reported",
        "generator-after-park",
        "coroutine generator overflowed its stack of 64 KiB",
    );
}
