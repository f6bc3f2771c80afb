//! Model checks of the wait queue with loom: loom threads park through [`LoomPark`].
//! A lost wake-up leaves a thread parked forever, which loom reports as a deadlock.
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib sync::`.

use super::*;

/// loom's threads as waiters, parking as the runtime's plain threads do (one
/// strategy for every model: `sched/park.rs`). `FAIR` = true makes every waiter
/// count as starving, so the handoff paths are explored too.
#[derive(Clone)]
pub(crate) struct LoomPark<const FAIR: bool>(Waiter);

impl<const FAIR: bool> Park for LoomPark<FAIR> {
    const FAIR_AFTER: Duration = if FAIR { Duration::ZERO } else { Duration::MAX };
    fn current() -> Self {
        LoomPark(Waiter::current())
    }
    fn unpark(&self) {
        self.0.unpark()
    }
    fn park(reason: Reason) {
        <Waiter as Park>::park(reason)
    }
    fn park_until(deadline: Instant, reason: Reason) {
        <Waiter as Park>::park_until(deadline, reason)
    }
}

#[test]
fn sema_release_reaches_waiter() {
    loom::model(|| {
        let s = Arc::new(Sema::<LoomPark<false>>::new(0));
        let s2 = s.clone();
        let t = loom::thread::spawn(move || s2.acquire(Reason::Semaphore));
        s.release(1);
        t.join().unwrap();
        assert_eq!(s.available(), 0);
    });
}

#[test]
fn sema_two_waiters_two_releases() {
    loom::model(|| {
        let s = Arc::new(Sema::<LoomPark<false>>::new(0));
        let (a, b) = (s.clone(), s.clone());
        let ta = loom::thread::spawn(move || a.acquire(Reason::Semaphore));
        let tb = loom::thread::spawn(move || b.acquire(Reason::Semaphore));
        s.release(1);
        s.release(1);
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(s.available(), 0);
    });
}
