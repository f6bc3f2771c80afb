//! Model checks of the mutex with loom: barging and hand-off (every waiter starving),
//! two and three threads; loom threads park through `LoomPark` (`models/sema.rs`).

use super::super::sema::loom_tests::LoomPark;
use super::*;
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Arc;

struct Counter<P: Park> {
    raw: RawMutex<P>,
    n: UnsafeCell<usize>,
}

// SAFETY: `n` is only accessed with `raw` held.
unsafe impl<P: Park> Sync for Counter<P> {}
// SAFETY: as above.
unsafe impl<P: Park> Send for Counter<P> {}

fn incr<P: Park>(c: &Counter<P>, times: usize) {
    for _ in 0..times {
        c.raw.lock();
        // SAFETY: we hold the lock.
        c.n.with_mut(|p| unsafe { *p += 1 });
        c.raw.unlock();
    }
}

fn run<P: Park + Send + Sync + 'static>(threads: usize, times: usize) {
    loom::model(move || {
        let c = Arc::new(Counter::<P> {
            raw: RawMutex::new(),
            n: UnsafeCell::new(0),
        });
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let c = c.clone();
                loom::thread::spawn(move || incr(&c, times))
            })
            .collect();
        incr(&c, times);
        for h in hs {
            h.join().unwrap();
        }
        // SAFETY: all other threads are joined.
        let n = c.n.with(|p| unsafe { *p });
        assert_eq!(n, (threads + 1) * times);
        assert!(!c.raw.is_locked());
        assert!(c.queue_is_empty());
    });
}

impl<P: Park> Counter<P> {
    fn queue_is_empty(&self) -> bool {
        self.raw.queue.is_empty() && self.raw.state.load(Ordering::SeqCst) == 0
    }
}

/// Waiters barge (nobody counts as starving): two threads, then three.
#[test]
fn mutex_barging() {
    run::<LoomPark<false>>(1, 2);
    run::<LoomPark<false>>(2, 1);
}

/// Every waiter counts as starving, so the lock is handed over: two, then three.
#[test]
fn mutex_handoff() {
    run::<LoomPark<true>>(1, 2);
    run::<LoomPark<true>>(2, 1);
}
