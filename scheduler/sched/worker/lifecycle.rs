//! A coroutine starts on a worker (stack, fiber, registry) and ends there.

use super::*;

impl Worker {
    /// Gives `g` a stack and a fiber on this worker; false if it could not start.
    pub(super) fn start(&self, g: &G) -> bool {
        let h = &g.header;
        if self.shutting_down.get() || self.shared.shutdown.load(Ordering::Acquire) {
            // Never start anything once the runtime is being dropped.
            self.abandon(g, Box::new(crate::Cancelled));
            return false;
        }
        if h.cancel.load(Ordering::Acquire) {
            // Cancelled before it ever ran: its closure never runs.
            self.abandon(g, Box::new(crate::Cancelled));
            return false;
        }
        let stack = if h.stack_size() == 0 {
            self.with_stacks(|pool, cache| pool.get(cache))
        } else {
            Stack::new(h.stack_size())
        };
        let stack = match stack {
            Ok(s) if self.shared.stack_stats => {
                // Measured from now: drop what a previous owner touched.
                s.release_memory();
                s
            }
            Ok(s) => s,
            Err(e) => {
                let err = crate::sched::spawn_error::SpawnError::stack(h, e);
                err.warn_once();
                self.abandon(g, Box::new(err));
                return false;
            }
        };
        let body = stack.body();
        let fiber = make_fiber(g, stack);
        // SAFETY: `g` is unstarted and owned by this worker: nobody else touches its fiber.
        unsafe { *h.fiber() = Some(fiber) };
        h.home.store(self.index as u32, Ordering::Relaxed);
        Counters::bump(&self.counters().started, 1);
        if h.migratable {
            let mut map = self.shared.migratable.lock();
            map.insert(
                h.id,
                Started {
                    g: g.clone(),
                    stack: body,
                },
            );
            // A worker beginning shutdown cancels what is in this map when it looks;
            // one that looked before this insert read `shutdown` first, so under the
            // lock we see it too and cancel the coroutine ourselves.
            if self.shared.shutdown.load(Ordering::SeqCst) {
                h.cancel.store(true, Ordering::Relaxed);
            }
            drop(map);
        } else {
            let mut reg = self.remote().registry.lock();
            h.slot.store(reg.len() as u32, Ordering::Relaxed);
            reg.push(Started {
                g: g.clone(),
                stack: body,
            });
        }
        true
    }

    /// Runs `f` on the stack pool and the P's cache of it; without a P (a coroutine
    /// ending after its P was taken), on a cache of its own emptied into the pool.
    pub(super) fn with_stacks<R>(&self, f: impl FnOnce(&StackPool, &mut StackCache) -> R) -> R {
        let pool = &self.shared.stacks;
        match self.held() {
            Some(p) => f(pool, &mut p.stacks.borrow_mut()),
            None => {
                let mut cache = StackCache::new();
                let r = f(pool, &mut cache);
                cache.drain_into(pool);
                r
            }
        }
    }

    /// Ends a coroutine that will never run: drops its closure, records `payload`
    /// as its outcome and wakes its joiner.
    pub(super) fn abandon(&self, g: &G, payload: Box<dyn std::any::Any + Send>) {
        g.abandon(payload);
        Counters::bump(&self.counters().finished, 1);
    }

    pub(super) fn finished(&self, g: G) {
        let h = &g.header;
        if self.shared.stack_stats {
            let body = if h.migratable {
                self.shared.migratable.lock().get(&h.id).map(|e| e.stack)
            } else {
                let i = h.slot.load(Ordering::Relaxed) as usize;
                self.remote().registry.lock().get(i).map(|e| e.stack)
            };
            if let Some(body) = body {
                let hw = crate::coroutine::stack::high_water(body);
                self.shared
                    .stack_high_water_max
                    .fetch_max(hw, Ordering::Relaxed);
            }
        }
        // Counted before it leaves the registry, which publishes both (release): a
        // reader that sees it gone from `live` sees it in `finished`.
        Counters::bump(&self.counters().finished, 1);
        // Out of the registry before its stack goes back to the pool: a reader that
        // finds it there (`dump`) may look at the stack's pages.
        if h.migratable {
            let mut map = self.shared.migratable.lock();
            let e = map.remove(&h.id);
            let last = map.is_empty();
            drop(map);
            if last && self.shared.shutdown.load(Ordering::SeqCst) {
                // Workers draining a shutdown wait for the last migratable coroutine,
                // wherever it ran: wake them all to see the set empty (a parker keeps
                // the token, so one that is about to sleep wakes at once).
                for i in 0..self.shared.remotes.len() {
                    self.shared.unpark_worker(i);
                }
            }
            drop(e);
        } else {
            let mut reg = self.remote().registry.lock();
            let i = h.slot.load(Ordering::Relaxed) as usize;
            reg.swap_remove(i);
            if let Some(moved) = reg.get(i) {
                moved.g.header.slot.store(i as u32, Ordering::Relaxed);
            }
        }
        // SAFETY: the coroutine has returned; this worker owns it.
        let fiber = unsafe { h.fiber() }
            .take()
            .expect("finished coroutine has a fiber");
        let stack = fiber.into_stack();
        if h.stack_size() == 0 {
            self.with_stacks(|pool, cache| pool.put(cache, stack));
        }
    }
}
