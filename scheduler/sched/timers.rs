//! A worker's timers: a min-heap of deadlines of the coroutines parked on it.
//!
//! Timers are per worker, so a started coroutine's wake-up is fired by its own
//! worker and it runs there, never on a timer thread. An entry is not removed when
//! its coroutine wakes early; it carries the park's sequence number and is ignored
//! when it fires for a park that has already ended.

use super::task::G;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::time::Instant;

struct Timer {
    deadline: Instant,
    seq: u32,
    g: G,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap and we want the earliest deadline on top.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        o.deadline.cmp(&self.deadline).then(o.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Timer>,
    next_seq: u32,
}

impl Timers {
    /// Arms a timer that unparks `g` at `deadline` if it is still in this park.
    pub(super) fn add(&mut self, deadline: Instant, g: G) {
        // Never 0 (it means "no timer"); a stale entry could only be mistaken for a
        // current one after 2^32 timers on this worker while it stays in the heap.
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let seq = self.next_seq;
        g.header.timer_seq.store(seq, Ordering::Relaxed);
        self.heap.push(Timer { deadline, seq, g });
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Pops every timer due at `now` whose park is still current, handing its
    /// coroutine and deadline to `fire`. Returns how many fired.
    pub(super) fn expire(&mut self, now: Instant, mut fire: impl FnMut(G, Instant)) -> usize {
        let mut n = 0;
        while let Some(e) = self.heap.peek() {
            if e.deadline > now {
                break;
            }
            let e = self.heap.pop().expect("peeked");
            if e.g.header.timer_seq.load(Ordering::Relaxed) == e.seq {
                n += 1;
                fire(e.g, e.deadline);
            }
        }
        n
    }

    /// Drops every timer (shutdown).
    pub(super) fn clear(&mut self) -> Vec<G> {
        self.heap.drain().map(|e| e.g).collect()
    }
}
