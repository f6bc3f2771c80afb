//! Where a worker puts a coroutine: spawned, woken, yielded, portable; the
//! claim on its P around user code; its timers.

use super::*;

impl Worker {
    // ---- queues, called from coroutines and wakers on this thread ----

    /// A coroutine spawned by a coroutine of this worker: it runs next (Go's
    /// `runnext`), and the one it displaces becomes stealable.
    #[inline]
    pub(in crate::sched) fn push_spawned(&self, mut g: G) {
        Counters::bump(&self.counters().spawned, 1);
        let spreader = self.spreader.get();
        if spreader != 0 && self.in_user.get() && self.current_id() == Some(spreader) {
            // Through the inbox even here, so that the load counts it at once and
            // it starts in the scheduler (starting may drop its closure: user code).
            let to = crate::sched::placement::least_loaded(&self.shared, self.index);
            let to = match to {
                Some(to) => Some(to),
                None if self.dedicated => None,
                None => Some(self.index),
            };
            if let Some(to) = to {
                let id = g.header.id;
                match self.shared.place(to, g, to != self.index) {
                    Ok(()) => return self.trace_spawn(id, to as u32),
                    // That M has exited (shutdown): the spawner's own path abandons it.
                    Err(back) => g = back,
                }
            }
        }
        if self.dedicated {
            // Nothing else runs on a dedicated thread: to the workers.
            self.trace_spawn(g.header.id, tr::TO_INJECTOR);
            return self.push_portable(g);
        }
        self.trace_spawn(g.header.id, tr::TO_RUNNEXT);
        if let Some(old) = self.runnext.replace(Some(g)) {
            self.push_back(old);
        }
    }

    #[inline]
    pub(super) fn trace_spawn(&self, id: u64, to: u32) {
        if let Some(t) = &self.trace {
            t.instant(self.index, tr::Kind::Spawn, id, to, 0);
        }
    }

    /// The coroutine running here has accepted a connection (`placement.rs`).
    #[inline]
    pub(in crate::sched) fn note_accept(&self, id: u64) {
        self.spreader.set(id);
    }

    #[inline]
    pub(super) fn current_id(&self) -> Option<u64> {
        // SAFETY: `current` is the coroutine running on this thread, alive while it
        // runs (its worker's registry holds it).
        self.current.get().map(|t| unsafe { t.as_ref() }.header.id)
    }

    /// A coroutine woken on this thread. From a coroutine it runs next (`runnext`,
    /// Go's order), the one it displaces going to the back of its queue. From the
    /// scheduler (timers, IO, shutdown) it takes `runnext` if that is free or it is
    /// the earliest of the timers firing now (`urgent`), else it waits in order at
    /// the back of `woken`, still ahead of the ready ones.
    #[inline]
    pub(in crate::sched) fn push_woken(&self, g: G) {
        if self.current.get().is_some() {
            if let Some(old) = self.runnext.replace(Some(g)) {
                self.push_back(old);
            }
            return;
        }
        let urgent = self.urgent.replace(false);
        let g = match self.runnext.take() {
            None => g,
            Some(old) if urgent => {
                self.push_woken_back(old);
                g
            }
            Some(old) => {
                self.runnext.set(Some(old));
                return self.push_woken_back(g);
            }
        };
        self.runnext.set(Some(g));
    }

    /// To the back of `woken` if started here, else the back of its queue.
    #[inline]
    pub(super) fn push_woken_back(&self, g: G) {
        if g.header.is_started() && !g.header.migratable {
            self.woken.borrow_mut().push_back(g);
        } else {
            self.push_back(g);
        }
    }

    /// The back of the queue that fits: `pinned` for started coroutines bound here,
    /// the P's ring (stealable; wakes a sleeper) for portable ones.
    // On every yield: kept inline however many callers it has.
    #[inline(always)]
    pub(super) fn push_back(&self, g: G) {
        if g.header.is_started() && !g.header.migratable {
            self.pinned.borrow_mut().push_back(g);
        } else {
            self.push_portable(g);
        }
    }

    /// Pushes a portable coroutine to the P's ring; from a coroutine, claims the P
    /// first (see `handoff.rs`). Without a P, to the injector.
    #[inline]
    pub(super) fn push_portable(&self, g: G) {
        // Not `current`: user code can also run in the scheduler's own stretches
        // (a closure dropped by `start`), where the P is claimed already.
        let user = self.in_user.get();
        if user {
            self.leave_user();
        }
        match self.held() {
            Some(p) => p.push(g, &self.shared.inject),
            // Never refused: accepted work that `Runtime::drop` abandons at worst.
            None => self.shared.inject.push_batch(std::iter::once(g)),
        }
        if user {
            self.enter_user();
        }
        self.shared.notify_parked();
    }

    /// Leaves user code: if sysmon took the P meanwhile, forgets it.
    #[inline]
    pub(super) fn leave_user(&self) {
        self.in_user.set(false);
        if !self.remote().claim.leave_user(&self.shared.ps, self.index) {
            self.set_p(None);
        }
    }

    /// Enters user code: sysmon may take the P until `leave_user`.
    #[inline]
    pub(super) fn enter_user(&self) {
        self.in_user.set(true);
        self.remote().claim.enter_user();
    }

    #[inline]
    pub(in crate::sched) fn add_timer(&self, deadline: Instant, g: G) {
        let mut timers = self.timers.borrow_mut();
        timers.add(deadline, g);
        self.publish_next_timer(&timers);
    }

    /// Tells sysmon when this M's earliest timer is due (it pokes the M then).
    #[inline]
    pub(super) fn publish_next_timer(&self, timers: &Timers) {
        let at = timers.next_deadline().map_or(u64::MAX, |d| {
            let ns = d.saturating_duration_since(self.shared.epoch).as_nanos();
            u64::try_from(ns).unwrap_or(u64::MAX - 1)
        });
        self.remote().next_timer.store(at, Ordering::Relaxed);
    }
}
