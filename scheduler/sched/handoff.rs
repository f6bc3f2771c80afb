//! Ps as tokens: how many Ms may run coroutines at once, and how sysmon hands the P
//! of a stuck M to another M (Go's `handoffp`).
//!
//! There are as many Ps as workers. An M runs coroutines only while it holds a P;
//! it gives its P back when it goes to sleep and takes one again when it wakes.
//! When sysmon finds an M that has run one coroutine for too long (a CPU hog, or a
//! blocking call), it *revokes* that M's P: the P becomes free at once, and an
//! idle M (or a new one, up to the runtime's cap of extra threads) takes it and
//! runs the portable work (unstarted and migratable coroutines) the stuck M cannot
//! get to. The stuck M keeps running its coroutine; at its next switch it sees the
//! revocation, and takes a P again before it runs anything else, waiting for one
//! to be free if need be. So the number of Ms running coroutines stays at most the
//! number of workers, while a stuck M no longer holds the others back.
//!
//! The coroutines started on the stuck M are not handed over: they stay with their
//! M (see `docs/safety.md`) and wait for it.
//!
//! ```text
//!   M0 holds P0, stuck in a hog           sysmon: M0 ran one coroutine > 10 ms
//!   M1 holds P1, busy                       revoke(M0): free += 1, M0.revoked
//!                                           nobody asleep -> start M2
//!   M2: acquire() -> P, runs M0's unstarted coroutines (stolen), the injector, ...
//!   M0 at its next switch: revoked -> acquire(): none free -> waits
//!   M2 runs out of work: sleeps -> release(): hands its P to M0, wakes it
//! ```

use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Mutex;

struct State {
    /// Ps held by no M.
    free: usize,
    /// Ms waiting for a P, oldest first.
    waiting: Vec<usize>,
    /// Which Ms hold a P.
    holds: Vec<bool>,
}

/// The P tokens of a runtime, and who holds them. All changes happen under one
/// lock, taken only when an M sleeps or wakes, by sysmon, and by an M whose
/// `revoked` hint is set: never on a switch.
pub(crate) struct Ps {
    state: Mutex<State>,
}

impl Ps {
    /// Ps for `workers` Ms, each holding one, and room for `ms` Ms in all.
    pub(crate) fn new(workers: usize, ms: usize) -> Ps {
        let mut holds = vec![false; ms];
        holds[..workers].iter_mut().for_each(|h| *h = true);
        Ps {
            state: Mutex::new(State {
                free: 0,
                waiting: Vec::new(),
                holds,
            }),
        }
    }

    /// Ps free right now.
    pub(super) fn free(&self) -> usize {
        self.state.lock().free
    }

    /// Whether M `me` holds a P.
    pub(super) fn holds(&self, me: usize) -> bool {
        self.state.lock().holds[me]
    }

    /// Takes a free P for M `me` (true), or queues it to be given one (false: wait
    /// until `holds(me)`).
    pub(super) fn acquire(&self, me: usize) -> bool {
        let mut st = self.state.lock();
        if st.holds[me] {
            return true;
        }
        if st.free > 0 {
            st.free -= 1;
            st.holds[me] = true;
            return true;
        }
        if !st.waiting.contains(&me) {
            st.waiting.push(me);
        }
        false
    }

    /// M `me` stops waiting for a P (shutdown).
    pub(super) fn cancel_wait(&self, me: usize) {
        self.state.lock().waiting.retain(|&w| w != me);
    }

    /// M `me` gives its P back (it is going to sleep or exit), if it still holds one
    /// (sysmon may have revoked it). Returns the M it went to, which the caller wakes.
    pub(super) fn release(&self, me: usize) -> Option<usize> {
        let mut st = self.state.lock();
        if !st.holds[me] {
            return None;
        }
        st.holds[me] = false;
        Self::give(&mut st)
    }

    /// Sysmon takes the P of stuck M `m` and sets its `revoked` hint. `Ok(Some(w))`:
    /// the P went to waiting M `w` (wake it); `Ok(None)`: the P is free now; `Err`:
    /// `m` held no P.
    pub(super) fn revoke(&self, m: usize, revoked: &AtomicBool) -> Result<Option<usize>, ()> {
        let mut st = self.state.lock();
        if !st.holds[m] {
            return Err(());
        }
        st.holds[m] = false;
        revoked.store(true, Ordering::Release);
        Ok(Self::give(&mut st))
    }

    /// The M's side of a revocation, at a switch: true if its P was taken (it must
    /// acquire one before running anything). Cheap unless the hint is set.
    pub(super) fn lost(&self, me: usize, revoked: &AtomicBool) -> bool {
        if !revoked.load(Ordering::Acquire) {
            return false;
        }
        let st = self.state.lock();
        revoked.store(false, Ordering::Relaxed);
        !st.holds[me]
    }

    fn give(st: &mut State) -> Option<usize> {
        if st.waiting.is_empty() {
            st.free += 1;
            return None;
        }
        let w = st.waiting.remove(0);
        st.holds[w] = true;
        Some(w)
    }
}
