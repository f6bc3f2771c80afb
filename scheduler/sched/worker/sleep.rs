//! A worker without work: its P, spinning, sleeping.

use super::*;

impl Worker {
    // ---- Ps ----

    /// Takes a P, sleeping until one is given if none is free (see `handoff.rs`).
    /// Shutdown needs no P: the draining runs regardless.
    pub(super) fn wait_for_p(&self) {
        let Some(t) = &self.trace else {
            self.wait_for_p_untraced();
            return;
        };
        let at = t.now();
        if !self.wait_for_p_untraced() {
            return;
        }
        let e = tr::Event {
            at,
            dur: t.now().saturating_sub(at),
            g: 0,
            kind: tr::Kind::WaitP,
            end: 0,
            other: tr::NONE,
        };
        t.record(self.index, e, None);
    }

    /// [`Self::wait_for_p`]; true if it had to wait.
    pub(super) fn wait_for_p_untraced(&self) -> bool {
        let ps = &self.shared.ps;
        // Not running anything while it waits: sysmon must not take it for stuck.
        self.counters().running.store(0, Ordering::Relaxed);
        // A coroutine the stuck one spawned need not wait for this M.
        match self.runnext.take() {
            Some(g) if !g.header.is_started() || g.header.migratable => {
                self.shared.inject.push_batch(std::iter::once(g));
                self.shared.notify_parked();
            }
            g => self.runnext.set(g),
        }
        let mut waited = false;
        loop {
            if let Some(p) = ps.acquire(self.index) {
                self.set_p(Some(p));
                return waited;
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                ps.cancel_wait(self.index);
                // Lost the race with a `release` that gave us one after all?
                self.set_p(ps.held(self.index));
                return waited;
            }
            self.remote().sleeper.park(None);
            waited = true;
        }
    }

    /// Gives the P back before sleeping; a waiting M gets it and is woken.
    pub(super) fn release_p(&self) {
        if self.p.get().is_some() {
            self.set_p(None);
            if let Some(w) = self.shared.ps.release(self.index) {
                self.shared.unpark_worker(w);
            }
        }
    }

    // ---- sleeping ----

    /// Waits a few microseconds for work before sleeping: waking a sleeping thread
    /// costs a futex call on both sides, far more than the wait when work keeps
    /// coming. A searcher (at most half the workers) watches every queue; a worker
    /// that is not allowed to search but has started coroutines of its own watches
    /// only its inbox, where their wake-ups arrive (a ping-pong pair split over two
    /// workers wakes each side this way, thousands of times a second).
    pub(super) fn spin_for_work(&self) -> bool {
        let searching = self.searching.get();
        if !searching && self.remote().registry.len() == 0 {
            return false;
        }
        // Spinning pays only if work tends to arrive within it. When the last
        // spins all came up empty (work arrives through the poller, or rarely), skip
        // a few idle episodes: the CPU is better left to other threads.
        let fails = self.spin_fails.get();
        if fails >= SPIN_FAILS_BEFORE_REST {
            self.spin_fails
                .set(if fails >= SPIN_FAILS_BEFORE_REST + SPIN_REST {
                    0
                } else {
                    fails + 1
                });
            if fails < SPIN_FAILS_BEFORE_REST + SPIN_REST {
                return false;
            }
        }
        // With sockets registered here, readiness arrives in the poller, not the
        // queues: look there too now and then (Go's spinning M polls the netpoller).
        let net = self.remote().io.is_active();
        // A worker serving sockets spins a quarter as long (~2.5 us): its work
        // mostly comes through the poller, and on a machine shared with clients
        // the spin takes CPU from them.
        let rounds = if net { SPIN_ROUNDS / 4 } else { SPIN_ROUNDS };
        for round in 0..rounds {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            if self.has_local_work()
                || searching && self.shared.has_portable_work()
                || self.timers_due()
            {
                self.spin_fails.set(0);
                return true;
            }
            if net && round % 8 == 7 && self.poll_net() {
                // Work that came through the poller: sleeping in it would have found
                // it too, without burning the CPU a client on this machine may need.
                // Counted as a fruitless spin, so that a worker fed by IO alone
                // soon stops spinning.
                self.spin_fails.set(self.spin_fails.get() + 1);
                return true;
            }
        }
        self.spin_fails.set(self.spin_fails.get() + 1);
        false
    }

    #[inline]
    pub(super) fn timers_due(&self) -> bool {
        matches!(self.timers.borrow().next_deadline(), Some(d) if d <= Instant::now())
    }

    /// Whether this worker has something to run without looking at other workers.
    #[inline]
    pub(in crate::sched) fn has_local_work(&self) -> bool {
        // A `Cell` cannot be peeked: take and put back (only this thread touches it).
        let rn = self.runnext.take();
        let has = rn.is_some();
        self.runnext.set(rn);
        // The ring through its stealing end: this runs in user code too
        // (`park::may_spin`), where the P may be gone already.
        has || !self.pinned.borrow().is_empty()
            || !self.woken.borrow().is_empty()
            || self
                .p
                .get()
                .is_some_and(|p| !self.shared.allp[p].steal.is_empty())
            || self.remote().inbox_len.load(Ordering::Acquire) != 0
    }

    pub(super) fn sleep(&self) {
        if self.searching.get() {
            self.searching.set(false);
            self.shared.idle.stop_searching();
        }
        let deadline = match (
            self.timers.borrow().next_deadline(),
            self.shared.next_portable_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.release_p();
        let sleeper = &self.remote().sleeper;
        Counters::bump(&self.counters().sleeps, 1);
        let io = &self.remote().io;
        // With descriptors registered, the worker sleeps in its poller so that
        // readiness wakes it; epoll counts in milliseconds, so not for a timer due
        // sooner than that.
        let soon = matches!(deadline, Some(d) if d <= Instant::now() + Duration::from_millis(1));
        let has_work = || {
            self.has_local_work()
                || self.shared.has_portable_work()
                || self.shared.shutdown.load(Ordering::SeqCst) && !self.shutting_down.get()
        };
        let _idle = crate::sched::deadlock::Asleep::enter();
        self.counters().note_sleep(self.shared.epoch);
        let searching = if io.is_active() && !soon {
            self.shared.idle.sleep(self.index, has_work, || {
                sleeper.park_polling(deadline, |d| {
                    let timeout = d.map(|d| d.saturating_duration_since(Instant::now()));
                    self.poller.borrow_mut().poll(timeout);
                })
            })
        } else {
            self.shared
                .idle
                .sleep(self.index, has_work, || sleeper.park(deadline))
        };
        self.counters().note_wake(self.shared.epoch);
        self.searching.set(searching);
    }
}
