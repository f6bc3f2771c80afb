//! `Barrier`: `n` parties meet, then all go on; reusable.

use super::sema::{WaitOpts, WaitQueue, RETRY};
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use std::fmt;

const COUNT_MASK: u64 = (1 << 32) - 1;

/// Lets `n` coroutines or threads wait until all `n` have arrived, then releases them
/// together; one of them is told it is the leader. Usable again for the next round.
///
/// ```
/// use corun::sync::Barrier;
/// use std::sync::Arc;
///
/// let b = Arc::new(Barrier::new(5));
/// let hs: Vec<_> = (0..5)
///     .map(|_| {
///         let b = b.clone();
///         corun::go!(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap());
/// let leaders = leaders.filter(|&is_leader| is_leader).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    n: u64,
    /// `generation << 32 | arrived`.
    state: AtomicU64,
    queue: WaitQueue,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one party of each round: the last to arrive.
    ///
    /// ```
    /// let b = corun::sync::Barrier::new(1);
    /// assert!(b.wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (`0` acts as `1`).
    ///
    /// ```
    /// let b = corun::sync::Barrier::new(2);
    /// # drop(b);
    /// ```
    pub fn new(n: usize) -> Self {
        Barrier {
            n: (n as u64).clamp(1, COUNT_MASK),
            state: AtomicU64::new(0),
            queue: WaitQueue::new(),
        }
    }

    /// Parks until all `n` parties of this round have called `wait`.
    ///
    /// ```
    /// use corun::sync::Barrier;
    /// use std::sync::Arc;
    /// let b = Arc::new(Barrier::new(2));
    /// let b2 = b.clone();
    /// let t = std::thread::spawn(move || b2.wait().is_leader());
    /// let me = b.wait().is_leader();
    /// assert!(me ^ t.join().unwrap());
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut s = self.state.load(Ordering::Acquire);
        let gen = loop {
            let (gen, arrived) = (s >> 32, s & COUNT_MASK);
            let new = if arrived + 1 >= self.n {
                (gen.wrapping_add(1) & COUNT_MASK) << 32
            } else {
                s + 1
            };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if arrived + 1 >= self.n => {
                    // Last to arrive: the round is over. Waking takes the queue lock, so a
                    // party that checked the generation under it before is queued, and
                    // one that checks after sees the new generation.
                    self.queue.wake_all(RETRY);
                    return BarrierWaitResult(true);
                }
                Ok(_) => break gen,
                Err(actual) => s = actual,
            }
        };
        let same_round = || self.state.load(Ordering::Acquire) >> 32 == gen;
        // Loop: a party of the next round queued before the wake-up of this one is woken
        // too early, sees its round still open, and waits again.
        while same_round() {
            self.queue.wait(
                WaitOpts {
                    reason: crate::sched::park::Reason::Barrier,
                    ..WaitOpts::default()
                },
                same_round,
                || {},
                |_| {},
                |_| {},
            );
        }
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish()
    }
}
