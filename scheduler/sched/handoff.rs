//! Who holds which P, and how sysmon takes the P of a stuck M (Go's `handoffp`).
//!
//! There are as many Ps as workers ([`P`](super::p::P)). An M runs coroutines
//! only while it holds one; it puts its P on the free list (Go's `pidle`) when it
//! goes to sleep and takes one again when it wakes. When sysmon finds an M that has
//! run one coroutine for too long (a CPU hog, or a blocking call), it *revokes* that
//! M's P: the P, with its run queue and stack cache, goes to a waiting M or the
//! free list at once, and an idle M (or a new one, up to the runtime's cap of extra
//! threads) takes it and runs the unstarted coroutines the stuck M cannot get to.
//! The stuck M keeps running its coroutine; when it next leaves user code it sees
//! the revocation and takes a P again before it runs anything else. So at most as
//! many Ms as workers run coroutines, while a stuck M holds nobody else back. The
//! coroutines started on the stuck M stay with it (see `docs/safety.md`).
//!
//! ```text
//!   M0 holds P0, stuck in a hog           sysmon: M0 ran one coroutine > 10 ms
//!   M1 holds P1, busy                       revoke(M0): P0 -> free list
//!                                           nobody asleep -> start M2
//!   M2: acquire() -> P0, runs its ring, the injector, ...
//!   M0 leaves user code: lost -> acquire(): none free -> waits
//!   M2 runs out of work: sleeps -> release(): hands P0 to M0, wakes it
//! ```
//!
//! # The claim protocol
//!
//! A P is touched by the M holding it and nobody else. The M holds it for sure
//! while it runs scheduler code; while it runs user code ([`Claim::enter_user`]
//! .. [`Claim::leave_user`]) sysmon may take it. Two words per M decide who owns
//! it, without an atomic read-modify-write on the switch path:
//!
//! - `in_user`, written by the M alone: true while it runs a coroutine and has
//!   not claimed its P back;
//! - `revoke`: `NONE`, or `ASK` (sysmon is deciding, and holds the Ps lock), or
//!   `DONE` (sysmon took the P; the M has not noticed yet).
//!
//! ```text
//!   M (leave_user)                     sysmon (revoke), under the Ps lock
//!   in_user = false                    revoke = ASK
//!   light barrier                      heavy barrier (membarrier)
//!   if revoke != NONE: slow path       if in_user: take the P, revoke = DONE
//!                                      else        revoke = NONE
//! ```
//!
//! This is Dekker's pattern: the heavy barrier (`membarrier(2)`, which runs a full
//! fence on every thread of the process that is on a CPU) orders the M's store
//! before its load at no cost to the M, so either sysmon sees `in_user` false and
//! gives up, or the M sees `ASK`/`DONE`. Seeing either, the M takes the Ps lock,
//! which sysmon holds until it has decided, and then knows: `DONE` means the P is
//! gone (it acknowledges with `NONE`); anything else means it still holds it. An M
//! that claims its P from user code (a spawn or a wake-up pushing to the ring) does
//! the same and then re-enters user code; having lost its P, it pushes to the
//! injector instead. Where `membarrier` is refused (old kernels, seccomp), and
//! under loom, the light barrier is a SeqCst fence as well. The model in
//! `scheduler/models/handoff.rs` runs a hand-off against a spawn.

use crate::loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::loom::sync::Mutex;
use std::collections::VecDeque;

const NONE: u32 = 0;
const ASK: u32 = 1;
const DONE: u32 = 2;

/// The two words of one M's claim on its P (see the module docs).
pub(crate) struct Claim {
    in_user: AtomicBool,
    revoke: AtomicU32,
}

impl Claim {
    pub(crate) fn new() -> Claim {
        Claim {
            in_user: AtomicBool::new(false),
            revoke: AtomicU32::new(NONE),
        }
    }

    /// The M starts running user code: sysmon may take its P from now on. Every
    /// write it made to its P happens before a revocation that sees this.
    #[inline]
    pub(super) fn enter_user(&self) {
        self.in_user.store(true, Ordering::Release);
    }

    /// Sysmon has taken this M's P and the M, still in user code, has not noticed.
    pub(super) fn was_revoked(&self) -> bool {
        self.revoke.load(Ordering::Relaxed) == DONE
    }

    /// The M leaves user code (after a switch back, or to touch its P from a
    /// coroutine). True if it still holds its P; false if sysmon took it, in which
    /// case it must not touch it again.
    #[inline]
    pub(super) fn leave_user(&self, ps: &Ps, me: usize) -> bool {
        self.in_user.store(false, Ordering::Relaxed);
        light_barrier();
        if self.revoke.load(Ordering::Acquire) == NONE {
            return true;
        }
        ps.settle(me, self)
    }
}

struct State {
    /// Ps held by no M (Go's `pidle`).
    free: Vec<usize>,
    /// Ms waiting for a P, oldest first.
    waiting: VecDeque<usize>,
    /// The P each M holds.
    holds: Vec<Option<usize>>,
}

/// Which M holds which P. All changes happen under one lock, taken when an M sleeps
/// or wakes, by sysmon, and by an M that sees a revocation: never on a switch.
pub(crate) struct Ps {
    state: Mutex<State>,
}

impl Ps {
    /// `workers` Ps, P `i` held by M `i`, and room for `ms` Ms in all.
    pub(crate) fn new(workers: usize, ms: usize) -> Ps {
        let mut holds = vec![None; ms];
        holds[..workers]
            .iter_mut()
            .enumerate()
            .for_each(|(i, h)| *h = Some(i));
        Ps {
            state: Mutex::new(State {
                free: Vec::new(),
                waiting: VecDeque::new(),
                holds,
            }),
        }
    }

    /// Ps free right now.
    pub(super) fn free(&self) -> usize {
        self.state.lock().free.len()
    }

    /// The P M `me` holds, if any.
    pub(super) fn held(&self, me: usize) -> Option<usize> {
        self.state.lock().holds[me]
    }

    /// Takes a free P for M `me`, or queues it to be given one (`None`: wait until
    /// `held(me)`).
    pub(super) fn acquire(&self, me: usize) -> Option<usize> {
        let mut st = self.state.lock();
        if let Some(p) = st.holds[me] {
            return Some(p);
        }
        if let Some(p) = st.free.pop() {
            st.holds[me] = Some(p);
            return Some(p);
        }
        if !st.waiting.contains(&me) {
            st.waiting.push_back(me);
        }
        None
    }

    /// The M that has waited longest for a P, if any.
    pub(super) fn first_waiter(&self) -> Option<usize> {
        self.state.lock().waiting.front().copied()
    }

    /// M `me` stops waiting for a P (shutdown).
    pub(super) fn cancel_wait(&self, me: usize) {
        self.state.lock().waiting.retain(|&w| w != me);
    }

    /// M `me` gives its P back (it is going to sleep or exit). Returns the M it went
    /// to, which the caller wakes.
    pub(super) fn release(&self, me: usize) -> Option<usize> {
        let mut st = self.state.lock();
        let p = st.holds[me].take()?;
        Self::give(&mut st, p)
    }

    /// Sysmon takes the P of M `m` if `m` is in user code. `Ok(Some(w))`: the P went
    /// to waiting M `w` (wake it); `Ok(None)`: it is free now; `Err`: `m` held no P
    /// or was not in user code.
    pub(super) fn revoke(&self, m: usize, claim: &Claim) -> Result<Option<usize>, ()> {
        let mut st = self.state.lock();
        let Some(p) = st.holds[m] else {
            return Err(());
        };
        // `m` acknowledges a DONE before it takes a P again.
        debug_assert_eq!(claim.revoke.load(Ordering::Relaxed), NONE);
        claim.revoke.store(ASK, Ordering::Relaxed);
        heavy_barrier();
        if !claim.in_user.load(Ordering::Acquire) {
            claim.revoke.store(NONE, Ordering::Relaxed);
            return Err(());
        }
        st.holds[m] = None;
        claim.revoke.store(DONE, Ordering::Release);
        Ok(Self::give(&mut st, p))
    }

    /// The M's slow path, having seen `ASK` or `DONE`: waits for sysmon to decide
    /// (it holds the lock meanwhile); true if the M still holds its P.
    #[cold]
    fn settle(&self, me: usize, claim: &Claim) -> bool {
        let st = self.state.lock();
        if claim.revoke.load(Ordering::Acquire) == DONE {
            debug_assert!(st.holds[me].is_none());
            claim.revoke.store(NONE, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give(st: &mut State, p: usize) -> Option<usize> {
        match st.waiting.pop_front() {
            Some(w) => {
                st.holds[w] = Some(p);
                Some(w)
            }
            None => {
                st.free.push(p);
                None
            }
        }
    }
}

/// Whether `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` is registered for this
/// process; if not, the light barrier is a real fence. A std atomic: no model
/// reaches it (under loom both barriers are fences).
static EXPEDITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the process for expedited membarriers (once; called by the builder
/// before any M starts).
pub(crate) fn init_barriers() {
    #[cfg(not(loom))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
            // SAFETY: membarrier takes plain integers and touches no memory of ours;
            // an unknown command or a refusal returns -1, which we handle.
            let r =
                unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) };
            EXPEDITED.store(r == 0, Ordering::Release);
        });
    }
}

/// The M's side of the barrier pair: free when sysmon can use `membarrier`.
#[inline]
fn light_barrier() {
    if cfg!(loom) || !EXPEDITED.load(Ordering::Relaxed) {
        crate::loom::sync::atomic::fence(Ordering::SeqCst);
    } else {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

/// Sysmon's side: every thread of the process that is on a CPU runs a full fence
/// before this returns (one that is not on a CPU passed one when it left it).
fn heavy_barrier() {
    #[cfg(not(loom))]
    if EXPEDITED.load(Ordering::Acquire) {
        const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
        // SAFETY: as in `init_barriers`; registered there (EXPEDITED is true).
        let r = unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) };
        if r == 0 {
            return;
        }
        // Refused after registering: the Ms rely on it for every switch, and
        // there is no sound way to go on without it.
        eprintln!(
            "corun: fatal: membarrier failed after registration: {}",
            std::io::Error::last_os_error()
        );
        std::process::abort();
    }
    crate::loom::sync::atomic::fence(Ordering::SeqCst);
}

/// The loom model of this module (all models live in `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/handoff.rs"]
mod loom_tests;
