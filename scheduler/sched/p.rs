//! P: what an M needs to run portable coroutines, handed between Ms whole.
//!
//! A P holds only what may change thread: the ring of unstarted (and migratable)
//! coroutines, whose other end thieves steal from; a cache of stacks for the
//! coroutines it starts; the scheduling tick and the random state for choosing a
//! victim. What can hold a started coroutine (`runnext`, the pinned queue, the
//! inbox, timers, the netpoller) belongs to the M, since started coroutines never
//! change thread. Which M holds a P, and how it changes hands, is `handoff.rs`.

use super::inject::Inject;
use super::queue::{self, Local, Steal};
use super::task::G;
use crate::coroutine::stack::StackCache;
use std::cell::{Cell, RefCell, UnsafeCell};

/// One P: its ring's stealing end, open to every thread, and the part only its
/// holder touches.
pub(crate) struct P {
    /// Other Ms steal the ring's portable coroutines from here.
    pub(crate) steal: Steal<G>,
    held: UnsafeCell<Held>,
}

/// The part of a P that only the M holding it touches.
pub(super) struct Held {
    pub(super) local: RefCell<Local<G>>,
    pub(super) stacks: RefCell<StackCache>,
    pub(super) tick: Cell<u32>,
    rng: Cell<u64>,
}

// SAFETY: `steal` is Sync. `held` is reached only through `held`, whose caller
// holds the P: `handoff.rs` gives a P to one M at a time, and every change of
// hands goes through the Ps lock or the claim protocol, so the old holder's
// accesses happen before the new holder's. `Held`'s contents (tasks, stacks) are
// Send, so using them on whichever thread holds the P is fine.
unsafe impl Sync for P {}

impl P {
    /// P number `id`.
    pub(crate) fn new(id: usize) -> P {
        let (local, steal) = queue::local();
        P {
            steal,
            held: UnsafeCell::new(Held {
                local: RefCell::new(local),
                stacks: RefCell::new(StackCache::new()),
                tick: Cell::new(1),
                rng: Cell::new(
                    0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                ),
            }),
        }
    }

    /// The holder's part.
    ///
    /// # Safety
    /// The calling thread holds this P (see `handoff.rs`: given to its M under the
    /// Ps lock, and not revoked: checked on leaving user code), or every thread
    /// that could hold it has been joined.
    #[inline]
    pub(super) unsafe fn held(&self) -> &Held {
        // SAFETY: the caller holds the P, so no other thread reaches `held`; only
        // shared references are made, and `Held` mutates through cells.
        unsafe { &*self.held.get() }
    }

    /// Takes every coroutine left in the ring (`Runtime::drop`).
    ///
    /// # Safety
    /// As for [`held`](Self::held).
    pub(crate) unsafe fn drain(&self) -> Vec<G> {
        // SAFETY: the caller's contract.
        let held = unsafe { self.held() };
        let mut local = held.local.borrow_mut();
        std::iter::from_fn(|| local.pop()).collect()
    }
}

impl Held {
    /// Pushes a portable coroutine at the back of the ring (the injector takes
    /// half if it is full).
    pub(super) fn push(&self, g: G, inject: &Inject<G>) {
        self.local.borrow_mut().push_back_or_overflow(g, inject);
    }

    /// A random number for choosing a victim (xorshift64*).
    pub(super) fn next_rand(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
