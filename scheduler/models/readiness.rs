//! Model checks of the edge protocol: a waiter racing an edge is never left queued
//! with nobody to wake it. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib readiness::loom_tests`.

use super::*;
use crate::loom::sync::atomic::AtomicBool;
use crate::loom::sync::Arc;

/// A socket with one byte to come: `data` is what the kernel holds.
struct Sock {
    ready: Readiness<usize>,
    data: AtomicBool,
    woken: AtomicBool,
}

#[test]
fn an_edge_racing_a_waiter_is_not_lost() {
    loom::model(|| {
        let s = Arc::new(Sock {
            ready: Readiness::new(),
            data: AtomicBool::new(false),
            woken: AtomicBool::new(false),
        });
        let s2 = s.clone();
        // The kernel: data arrives, then epoll reports the edge.
        let t = loom::thread::spawn(move || {
            s2.data.store(true, Ordering::SeqCst);
            s2.ready
                .fire(Dir::Read, |_| s2.woken.store(true, Ordering::SeqCst));
        });
        // The reader: one attempt, then wait (or retry).
        let mut got = false;
        loop {
            let seen = s.ready.seq(Dir::Read);
            if s.data.load(Ordering::SeqCst) {
                got = true;
                break;
            }
            if s.ready.wait(Dir::Read, seen, 7) {
                break;
            }
        }
        t.join().unwrap();
        // Either it read the data, or it queued and the edge woke it.
        assert!(got || s.woken.load(Ordering::SeqCst));
    });
}
