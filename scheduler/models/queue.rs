//! loom models of the local run queue (`sched/queue.rs`, whose child module this is)
//! and the injector (`sched/inject.rs`).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --lib sched::queue::loom_tests
//! ```
//!
//! Under `cfg(loom)` the ring has 4 slots, so a handful of operations reach
//! full/overflow and wrap.
//!
//! Every model runs with a preemption bound of 3 unless
//! `LOOM_MAX_PREEMPTIONS` overrides it. Measured, release mode, 2 cores:
//! the whole file takes ~10 s at bound 3 (model (b) ~8 s, (a) ~0.3 s, the
//! others < 0.1 s) and ~1 min with `LOOM_MAX_PREEMPTIONS=4`.
//!
//! The models were checked against deliberately broken variants of
//! `queue.rs`; each of these makes (a) and/or (b) fail: `tail` store
//! Relaxed, thief's `tail` load Relaxed, thief's release CAS Relaxed, the
//! owner's `head` refresh Relaxed, `pop` clobbering `steal`, thieves not
//! backing off from a steal in progress.

use crate::loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::loom::sync::Arc;
use crate::loom::thread;
use crate::sched::inject::Inject;
use crate::sched::queue::{self, Local, LOCAL_QUEUE_CAPACITY};

const DEFAULT_PREEMPTIONS: usize = 3;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = ::loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    builder.check(f);
}

fn drain<T: Send>(local: &mut Local<T>, out: &mut Vec<T>) {
    while let Some(task) = local.pop() {
        out.push(task);
    }
}

/// Asserts that `seen` is exactly `0..n`, each once.
/// An injector and a run queue (its owner half and its thieves' half).
fn ring() -> (Inject<usize>, Local<usize>, queue::Steal<usize>) {
    let (local, steal) = queue::local::<usize>();
    (Inject::new(), local, steal)
}

/// A thief that steals once into a queue of its own and returns what it got.
fn spawn_thief(steal: queue::Steal<usize>) -> thread::JoinHandle<Vec<usize>> {
    thread::spawn(move || {
        let (mut mine, _) = queue::local();
        let mut seen = Vec::new();
        seen.extend(steal.steal_into(&mut mine));
        drain(&mut mine, &mut seen);
        seen
    })
}

fn assert_each_once(mut seen: Vec<usize>, n: usize) {
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}

#[test]
fn capacity_is_small_under_loom() {
    assert_eq!(LOCAL_QUEUE_CAPACITY, 4);
}

/// (a) The owner pushes past capacity (overflow to the injector, and index
/// wrap of the 4-slot ring) and pops, while a thief steals. Every token is
/// seen exactly once across pop, steal and overflow.
#[test]
fn push_overflow_while_stealing() {
    model(|| {
        const N: usize = 7;
        let (inject, mut local, steal) = ring();

        let thief = spawn_thief(steal);

        let mut seen = Vec::new();
        for i in 0..3 {
            local.push_back_or_overflow(i, &inject);
        }
        seen.extend(local.pop());
        for i in 3..N {
            local.push_back_or_overflow(i, &inject);
        }
        drain(&mut local, &mut seen);

        seen.extend(thief.join().unwrap());
        seen.extend(inject.pop_n(usize::MAX));
        assert_each_once(seen, N);
    });
}

/// (b) Two thieves steal from one queue while its owner pops (and pushes
/// more). Exercises "a steal is in progress" (the second thief backs off,
/// the owner pops around the claimed range) and stealing into a queue.
#[test]
fn two_thieves_and_owner_popping() {
    model(|| {
        const N: usize = 5;
        let (inject, mut local, steal) = ring();
        for i in 0..4 {
            local.push_back_or_overflow(i, &inject);
        }

        let thieves: Vec<_> = (0..2).map(|_| spawn_thief(steal.clone())).collect();

        let mut seen = Vec::new();
        seen.extend(local.pop());
        local.push_back_or_overflow(4, &inject);
        drain(&mut local, &mut seen);

        for thief in thieves {
            seen.extend(thief.join().unwrap());
        }
        seen.extend(inject.pop_n(usize::MAX));
        assert!(steal.is_empty());
        assert_each_once(seen, N);
    });
}

/// A token that counts its drops.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// (c) Dropping a non-empty queue (while a thief may be mid-steal, and with
/// some tokens overflowed to the injector) drops every token exactly once.
#[test]
fn drop_non_empty_queue_drops_each_once() {
    model(|| {
        const N: usize = 5;
        let drops = Arc::new(AtomicUsize::new(0));
        let inject = Inject::new();
        let (mut local, steal) = queue::local::<Token>();
        for _ in 0..N {
            local.push_back_or_overflow(Token(drops.clone()), &inject);
        }

        let thief = thread::spawn(move || {
            let (mut mine, _) = queue::local();
            // Drop the returned one now, the rest with `mine`.
            drop(steal.steal_into(&mut mine));
        });

        drop(local);
        thief.join().unwrap();
        drop(inject);
        assert_eq!(drops.load(SeqCst), N);
    });
}

/// The injector: `push` racing with `close` is either accepted (and then
/// seen by the drain after `close`) or refused and handed back.
#[test]
fn inject_push_races_close() {
    model(|| {
        let inject = Arc::new(Inject::new());
        let pushers: Vec<_> = (0..2)
            .map(|i| {
                let inject = inject.clone();
                thread::spawn(move || inject.push(i).is_ok())
            })
            .collect();
        assert!(inject.close());
        let mut drained: Vec<usize> = inject.pop_n(usize::MAX).collect();
        let accepted: Vec<bool> = pushers.into_iter().map(|h| h.join().unwrap()).collect();
        // Late accepted pushes are impossible: a push is either before close
        // (queued, maybe drained above) or refused.
        drained.extend(inject.pop_n(usize::MAX));
        let expected: Vec<usize> = (0..2).filter(|&i| accepted[i]).collect();
        drained.sort_unstable();
        assert_eq!(drained, expected);
        assert!(inject.is_empty());
    });
}
