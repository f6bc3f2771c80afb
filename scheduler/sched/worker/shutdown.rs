//! A worker at shutdown: cancels what is bound to it, then drains.

use super::*;

impl Worker {
    // ---- shutdown ----

    /// Once: abandons unstarted coroutines here and cancels every started one bound
    /// here, youngest first, so scoped children unwind before their scope.
    pub(super) fn begin_shutdown(&self) {
        if self.shutting_down.replace(true) {
            return;
        }
        let mut unstarted = Vec::new();
        if self.dedicated {
            // Its queues hold its own coroutine and nothing else; the injector and
            // the migratable coroutines are the workers' to drain, never run here.
            let timers = self.timers.borrow_mut().clear();
            drop(timers);
            return self.cancel_all(self.started_here());
        }
        if let Some(g) = self.runnext.take() {
            unstarted.push(g);
        }
        if let Some(p) = self.held() {
            while let Some(g) = p.local.borrow_mut().pop() {
                unstarted.push(g);
            }
        }
        while let Some(g) = self.shared.inject.pop() {
            unstarted.push(g);
        }
        for g in unstarted {
            if g.header.is_started() {
                self.pinned.borrow_mut().push_back(g);
            } else {
                self.abandon(&g, Box::new(crate::Cancelled));
            }
        }
        let timers = self.timers.borrow_mut().clear();
        drop(timers);
        let mut victims = self.started_here();
        // Migratable coroutines belong to no worker: every worker cancels those it
        // sees (cancelling twice is harmless) and stays until all have ended, so a
        // wake-up sent to any worker's inbox still finds it running.
        victims.extend(self.shared.migratable.lock().values().map(|e| e.g.clone()));
        self.cancel_all(victims);
    }

    /// The started coroutines bound to this M, alive.
    pub(super) fn started_here(&self) -> Vec<G> {
        let reg = self.remote().registry.lock();
        reg.iter().map(|e| e.g.clone()).collect()
    }

    /// Cancels `victims`, youngest first, so scoped children unwind before their
    /// scope.
    pub(super) fn cancel_all(&self, mut victims: Vec<G>) {
        victims.sort_by_key(|g| std::cmp::Reverse(g.header.id));
        if cfg!(panic = "abort") {
            // Unwinding would abort the process: the worker stops running anything
            // (see `run_loop`) and `Runtime::drop` leaks what is left.
            return;
        }
        for g in &victims {
            g.header.cancel.store(true, Ordering::Relaxed);
        }
        for g in &victims {
            park::unpark(g);
        }
    }

    pub(super) fn is_drained(&self) -> bool {
        self.remote().registry.len() == 0
            && !self.has_local_work()
            && self.shared.migratable.lock().is_empty()
    }
}
