//! Model checks of the claim protocol with loom: the production `Ps` and `Claim`,
//! with a loom cell standing for the P's ring (loom reports any two unordered
//! accesses to it as a race). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib handoff::loom_tests`.
//! Under loom both barriers are SeqCst fences, as where `membarrier` is refused.

use super::*;
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::Arc;

struct World {
    ps: Ps,
    claim: Claim,
    /// P 0's ring: the tokens pushed to it.
    ring: UnsafeCell<Vec<usize>>,
    /// Tokens that went to the injector instead.
    injected: AtomicUsize,
}

fn world() -> Arc<World> {
    Arc::new(World {
        // One P, held by M 0; room for M 1, which takes it over.
        ps: Ps::new(1, 2),
        claim: Claim::new(),
        ring: UnsafeCell::new(Vec::new()),
        injected: AtomicUsize::new(0),
    })
}

/// Pushes `token` to the ring, as its holder does.
fn push(w: &World, token: usize) {
    // SAFETY: not known, which is the point: loom fails the model if this access
    // is not ordered after every other thread's.
    w.ring.with_mut(|r| unsafe { (*r).push(token) });
}

/// M 0 runs a coroutine that spawns (`Worker::push_portable`), then switches back
/// to the scheduler and touches its ring (`Worker::run_task`, `next_task`).
fn m0(w: &World) -> bool {
    let mut holds = true;
    w.claim.enter_user();
    // The spawn claims the P from user code.
    holds &= w.claim.leave_user(&w.ps, 0);
    if holds {
        push(w, 1);
    } else {
        w.injected.fetch_add(1, Ordering::Relaxed);
    }
    w.claim.enter_user();
    // The coroutine switches out.
    holds &= w.claim.leave_user(&w.ps, 0);
    if holds {
        push(w, 3);
    }
    holds
}

/// Sysmon revokes M 0's P; if it got it, M 1 takes it and pushes to its ring.
fn sysmon(w: &World) -> bool {
    match w.ps.revoke(0, &w.claim) {
        Ok(to) => {
            assert_eq!(to, None, "nobody waits for a P in this model");
            assert_eq!(w.ps.acquire(1), Some(0));
            push(w, 2);
            true
        }
        Err(()) => false,
    }
}

/// Runs `m0` on this thread while sysmon revokes on another; gives the world, what
/// `m0` returned and whether sysmon took the P.
fn race<R>(m0: impl FnOnce(&World) -> R) -> (Arc<World>, R, bool) {
    let w = world();
    let w1 = w.clone();
    let t = loom::thread::spawn(move || sysmon(&w1));
    let r = m0(&w);
    let taken = t.join().unwrap();
    (w, r, taken)
}

#[test]
fn revoke_races_a_spawn_from_user_code() {
    loom::model(|| {
        let (w, kept, taken) = race(m0);
        // Exactly one of the two holds the P in the end.
        assert_ne!(kept, taken);
        assert_eq!(w.ps.held(0).is_some(), kept);
        assert_eq!(w.ps.held(1).is_some(), taken);
        // The spawned token is in exactly one place.
        // SAFETY: both threads are joined.
        let ring = w.ring.with(|r| unsafe { (*r).clone() });
        let in_ring = ring.iter().filter(|&&t| t == 1).count();
        assert_eq!(in_ring + w.injected.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn revoke_misses_an_m_in_the_scheduler() {
    loom::model(|| {
        // M 0 only ever runs scheduler code: its P is never taken.
        let (w, (), taken) = race(|w| push(w, 1));
        assert!(!taken);
        assert_eq!(w.ps.held(0), Some(0));
    });
}
