//! M: a worker thread, the P it holds, and its scheduling loop.
//!
//! Where a runnable coroutine waits, on the worker that will run it:
//!
//! | queue     | holds                                   | who takes from it        |
//! |-----------|-----------------------------------------|--------------------------|
//! | `runnext` | the one just woken or spawned here      | this worker, next        |
//! | `woken`   | started ones woken by timers, IO or     | this worker, before      |
//! |           | other threads (via the inbox)           | `pinned` (bounded)       |
//! | `pinned`  | started coroutines (bound to this M)    | this worker only         |
//! | P's ring  | portable: unstarted or migratable       | the P's M, or stolen     |
//! | inbox     | started ones woken by other threads     | this worker only         |
//! | injector  | portable work from outside; overflow    | any worker               |
//!
//! The order (`next_task`): timers sysmon saw due, `runnext` (inheriting the time
//! slice, at most `RUNNEXT_STREAK` in a row), the injector every 61 ticks, the inbox
//! taken into `woken`, then `woken` (at most `WOKEN_STREAK` in a row) and `pinned`
//! alternating with the ring, due timers, a batch from the injector, then stealing
//! half of a random victim P's ring. Finding nothing, the worker sleeps (see
//! `idle.rs`) until work arrives or its earliest timer is due.
//!
//! A woken coroutine goes ahead of the ready ones (Go's `runnext` does the same),
//! and the running one yields at its next budget point when one waits in the inbox
//! or sysmon pokes the M (a timer due, or 10 ms in one coroutine): so a deadline or
//! a reply is not held up by a queue of busy neighbours.

use super::context;
use super::counters::Counters;
use super::driver::Driver;
use super::p::Held;
use super::park;
use super::registry::Started;
use super::shared::Shared;
use super::task::{make_fiber, Request, G, PARKED, QUEUED, RUNNING};
use super::timers::Timers;
use super::trace::{self as tr, Trace};
use crate::coroutine::stack::{Stack, StackCache, StackPool};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod lifecycle;
mod queues;
mod shutdown;
mod sleep;

/// How many times in a row `runnext` may run before the queues get a turn.
const RUNNEXT_STREAK: u32 = 16;
/// How many woken coroutines in a row may run before `pinned` gets a turn.
const WOKEN_STREAK: u32 = 16;
/// Rounds of ~32 spin hints a searcher waits for work before it sleeps (~10 us).
const SPIN_ROUNDS: u32 = 100;
/// After this many fruitless spins in a row, a worker skips spinning...
const SPIN_FAILS_BEFORE_REST: u32 = 4;
/// ...for this many idle episodes, then tries again.
const SPIN_REST: u32 = 16;
/// Every this many ticks the global injector is checked first (Go's 61).
const GLOBAL_EVERY: u32 = 61;

pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    /// `&shared.remotes[index]` (see `remote`).
    remote: *const super::shared::Remote,
    /// The coroutine running now (set around each resume).
    pub(crate) current: Cell<Option<std::ptr::NonNull<super::task::Task>>>,
    runnext: Cell<Option<G>>,
    woken: RefCell<VecDeque<G>>,
    woken_streak: Cell<u32>,
    /// The next coroutine woken from the scheduler displaces `runnext` (see
    /// `push_woken`).
    urgent: Cell<bool>,
    pinned: RefCell<VecDeque<G>>,
    /// Scratch space for taking in the inbox (kept for its capacity).
    inbox_buf: RefCell<VecDeque<G>>,
    timers: RefCell<Timers>,
    /// The P this M holds (an index into `Shared::allp`), if any.
    p: Cell<Option<usize>>,
    /// Its holder's part, or null (kept with `p` by `set_p`, one load on hot paths).
    held_p: Cell<*const Held>,
    /// Running user code with the P unclaimed (this M's copy of its claim word).
    in_user: Cell<bool>,
    /// What the cooperative budget leaves the running coroutine (`budget.rs`).
    pub(super) budget: Cell<u32>,
    streak: Cell<u32>,
    searching: Cell<bool>,
    /// The coroutine that last accepted a connection here (its id; 0: none): what
    /// it spawns is placed on the least loaded worker (`placement.rs`).
    spreader: Cell<u64>,
    /// Consecutive spins that found nothing (see `spin_for_work`).
    spin_fails: Cell<u32>,
    shutting_down: Cell<bool>,
    /// A dedicated coroutine's thread: runs that one coroutine, holds no P, takes
    /// no portable work (`dedicated.rs`).
    dedicated: bool,
    /// This worker's IO driver, the netpoller (its other half is `Remote::io`).
    poller: RefCell<Box<dyn Driver>>,
    /// The runtime's trace, if it records one (`trace.rs`): checked once per run
    /// slice.
    trace: Option<Arc<Trace>>,
}

/// The body of worker thread `index`.
pub(crate) fn run(shared: Arc<Shared>, index: usize, poller: Box<dyn Driver>) {
    let w = Worker::new(shared, index, poller, false);
    w.set_p(w.shared.ps.held(index));
    w.run_guarded(|| w.run_loop());
    w.release_p();
}

/// The body of dedicated thread `index` (`dedicated.rs`): runs the one coroutine
/// placed in its inbox, and nothing else, then gives its slot back.
pub(super) fn run_dedicated(shared: Arc<Shared>, index: usize) {
    super::template::mark_dedicated();
    let poller = shared.dedicated.take_poller(index);
    let w = Worker::new(shared, index, poller, true);
    w.run_guarded(|| w.dedicated_loop());
    // `dedicated_loop` emptied every queue and timer before it returned.
    let Worker { shared, poller, .. } = w;
    shared.dedicated.release(index, poller.into_inner());
}

impl Worker {
    fn new(shared: Arc<Shared>, index: usize, poller: Box<dyn Driver>, dedicated: bool) -> Worker {
        if let Err(e) = crate::coroutine::overflow::ensure_altstack() {
            eprintln!("corun: worker {index} has no signal stack, so a coroutine stack overflow may not be reported: {e}");
        }
        let w = Worker {
            index,
            remote: &shared.remotes[index],
            current: Cell::new(None),
            runnext: Cell::new(None),
            woken: RefCell::new(VecDeque::with_capacity(64)),
            woken_streak: Cell::new(0),
            urgent: Cell::new(false),
            pinned: RefCell::new(VecDeque::with_capacity(if dedicated { 1 } else { 256 })),
            inbox_buf: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::default()),
            p: Cell::new(None),
            held_p: Cell::new(std::ptr::null()),
            in_user: Cell::new(false),
            trace: shared.trace.clone(),
            shared,
            budget: Cell::new(super::budget::BUDGET),
            streak: Cell::new(0),
            searching: Cell::new(false),
            spreader: Cell::new(0),
            spin_fails: Cell::new(0),
            shutting_down: Cell::new(false),
            dedicated,
            poller: RefCell::new(poller),
        };
        w.remote().thread.record_current();
        w
    }

    /// Runs `body` as this thread's worker, aborting if the scheduler panics.
    fn run_guarded(&self, body: impl FnOnce()) {
        // Cleared however this block is left, before `self` is dropped.
        let _current = context::WorkerGuard::set(self);
        self.counters().note_wake(self.shared.epoch);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        if let Err(payload) = r {
            // The coroutines bound to this thread could never run, be cancelled or
            // be freed again, while wakers and handles still point at them and at
            // the runtime: there is no sound way to go on.
            std::mem::forget(payload);
            eprintln!("corun: fatal: worker {} of runtime '{}' panicked in the scheduler (see the message above); its coroutines cannot go on: aborting", self.index, self.shared.name);
            std::process::abort();
        }
    }
}

impl Worker {
    /// Whether this is a dedicated coroutine's thread (`dedicated.rs`).
    pub(super) fn is_dedicated(&self) -> bool {
        self.dedicated
    }

    pub(crate) fn owned_by(&self, s: &Shared) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.shared), s)
    }

    /// This worker's shared part.
    #[inline]
    pub(super) fn remote(&self) -> &super::shared::Remote {
        // Indexing `remotes` here cost ~35 instructions per switch (it is reached
        // 5-7 times), hence the pointer.
        // SAFETY: `remote` points into `self.shared.remotes`, a boxed slice that is
        // never replaced, in the `Shared` that `self.shared` keeps alive for as long
        // as `self` lives (set in `Worker::new` from a checked index).
        unsafe { &*self.remote }
    }

    /// The holder's part of this M's P, if it holds one.
    #[inline]
    fn held(&self) -> Option<&Held> {
        let h = self.held_p.get();
        if h.is_null() {
            return None;
        }
        // Code a coroutine runs (e.g. `may_spin`) must claim the P first: a
        // mistake here is a race on another M's P, so it is checked even in
        // release builds (one load of a cell of this M).
        assert!(
            !self.in_user.get(),
            "corun: a worker touched its P from user code without claiming it"
        );
        // SAFETY: `held_p` is set by `set_p` while this M holds the P, and cleared
        // when it gives it up or learns it lost it, which it checks whenever it
        // leaves user code (`leave_user`) before it comes here; it is not in user
        // code (checked above), where sysmon could take it. The `P` lives in
        // `Shared::allp`, kept alive by `self.shared`.
        Some(unsafe { &*h })
    }

    /// Records the P this M now holds (or none).
    fn set_p(&self, p: Option<usize>) {
        self.p.set(p);
        let h = match p {
            // SAFETY: this M was just given P `p` under the Ps lock (or holds it
            // from the start); only a pointer is kept, used by `held`.
            Some(p) => std::ptr::from_ref(unsafe { self.shared.allp[p].held() }),
            None => std::ptr::null(),
        };
        self.held_p.set(h);
    }

    #[inline]
    pub(crate) fn counters(&self) -> &Counters {
        &self.remote().counters
    }

    fn run_loop(&self) {
        loop {
            if cfg!(panic = "abort") && self.shutting_down.get() {
                break;
            }
            if self.p.get().is_none() {
                self.wait_for_p();
            }
            if let Some(g) = self.next_task() {
                if self.searching.get() {
                    self.searching.set(false);
                    if self
                        .shared
                        .idle
                        .found_work(|| self.shared.has_portable_work())
                    {
                        // More work others can take: let another worker look.
                        self.shared.notify_parked();
                    }
                }
                self.run_task(g);
                continue;
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                self.begin_shutdown();
                // With `panic = "abort"` nothing can be unwound: leave the started
                // coroutines where they are; `Runtime::drop` leaks them once every
                // thread that could run them has stopped.
                if cfg!(panic = "abort") || self.is_drained() && self.remote().close_inbox() {
                    break;
                }
                if self.has_local_work() {
                    continue;
                }
            }
            // With a P, `next_task` has just polled.
            if self.p.get().is_none() && self.poll_net() {
                continue;
            }
            if self.spin_for_work() {
                continue;
            }
            self.sleep();
        }
    }

    /// A dedicated thread's loop: its coroutine (and the timers and IO it waits
    /// on), until it ends; no P, no stealing, no part in the idle protocol.
    fn dedicated_loop(&self) {
        loop {
            if cfg!(panic = "abort") && self.shutting_down.get() {
                break;
            }
            if self.timers_due() {
                self.fire_own_timers();
            }
            if let Some(g) = self.next_task() {
                self.run_task(g);
                continue;
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                self.begin_shutdown();
            }
            if self.remote().registry.len() == 0 && !self.has_local_work() {
                // Its coroutine has ended: the thread goes with it.
                if self.remote().close_inbox() {
                    break;
                }
                continue;
            }
            if self.has_local_work() || self.poll_net() {
                continue;
            }
            let deadline = self.timers.borrow().next_deadline();
            let remote = self.remote();
            let _idle = super::deadlock::Asleep::enter();
            self.counters().note_sleep(self.shared.epoch);
            let soon =
                matches!(deadline, Some(d) if d <= Instant::now() + Duration::from_millis(1));
            if remote.io.is_active() && !soon {
                remote.sleeper.park_polling(deadline, |d| {
                    let timeout = d.map(|d| d.saturating_duration_since(Instant::now()));
                    self.poller.borrow_mut().poll(timeout);
                });
            } else {
                remote.sleeper.park(deadline);
            }
            self.counters().note_wake(self.shared.epoch);
        }
        // What it still holds goes now, while this is still its worker (a timer may
        // hold the last reference to its coroutine, whose result's destructor is
        // user code), and before the slot is free for the next thread.
        // Sockets still registered here (handed to other coroutines) move on first:
        // the destructors below are user code and may wait for their readers.
        self.poller.borrow_mut().retire();
        // Taken out first: no cell is borrowed while that code runs.
        let timers = self.timers.borrow_mut().clear();
        let woken = std::mem::take(&mut *self.woken.borrow_mut());
        let pinned = std::mem::take(&mut *self.pinned.borrow_mut());
        drop((timers, self.runnext.take(), woken, pinned));
        self.counters().note_sleep(self.shared.epoch);
    }

    // ---- choosing what runs next ----

    // Inlined into both loops (the workers' and the dedicated threads'): as a call
    // it cost the yield path ~10% (callgrind and A/B, w2).
    #[inline(always)]
    fn next_task(&self) -> Option<G> {
        let poke = &self.remote().poke;
        if poke.load(Ordering::Relaxed) != 0 {
            let poke = poke.swap(0, Ordering::Relaxed);
            if poke & super::shared::POKE_HANDBACK != 0 && self.shared.ps.first_waiter().is_some() {
                // Another M's coroutines wait for a P: this one goes round to it,
                // and this M queues for the next, no longer searching.
                if self.searching.replace(false) {
                    self.shared.idle.stop_searching();
                }
                if let Some(t) = &self.trace {
                    t.instant(self.index, tr::Kind::Handback, 0, tr::NONE, 0);
                }
                self.release_p();
                self.wait_for_p();
            }
            if poke & super::shared::POKE_TIMERS != 0 {
                self.fire_timers();
            }
        }
        if let Some(g) = self.runnext.take() {
            if self.streak.get() < RUNNEXT_STREAK {
                self.streak.set(self.streak.get() + 1);
                return Some(g);
            }
            // Its turn is over, not its place ahead of the ready ones.
            self.push_woken_back(g);
        }
        self.streak.set(0);
        let Some(p) = self.held() else {
            // Only a draining shutdown runs without a P: this M's own coroutines.
            return self.pop_pinned();
        };
        let tick = p.tick.get().wrapping_add(1);
        p.tick.set(tick);
        if tick % GLOBAL_EVERY == 0 {
            self.maintenance();
            if let Some(g) = self.shared.inject.pop() {
                return Some(g);
            }
        }
        if let Some(g) = self.pop_own(p, tick) {
            return Some(g);
        }
        if self.fire_timers() > 0 {
            if let Some(g) = self.runnext.take().or_else(|| self.pop_own(p, tick)) {
                return Some(g);
            }
        }
        if let Some(g) = self.take_injected(p) {
            return Some(g);
        }
        // The netpoller before the other Ms' rings (Go's order): IO readiness is
        // work only this M can run, and a searcher that finds it would wake a
        // sleeping M for nothing.
        if self.poll_net() {
            if let Some(g) = self.runnext.take().or_else(|| self.pop_own(p, tick)) {
                return Some(g);
            }
        }
        self.steal(p)
    }

    /// Pops from this M's own queues, `pinned` and the P's ring taking turns.
    fn pop_own(&self, p: &Held, tick: u32) -> Option<G> {
        if tick & 1 == 0 {
            if let Some(g) = self.pop_pinned() {
                return Some(g);
            }
            p.local.borrow_mut().pop()
        } else {
            if let Some(g) = p.local.borrow_mut().pop() {
                return Some(g);
            }
            self.pop_pinned()
        }
    }

    /// Pops a coroutine bound to this M, after taking in the inbox: a woken one
    /// first, unless `WOKEN_STREAK` ran in a row; else `pinned`'s head.
    #[inline]
    fn pop_pinned(&self) -> Option<G> {
        if self.remote().inbox_len.load(Ordering::Acquire) != 0 {
            self.take_inbox();
        }
        let streak = self.woken_streak.get();
        if streak < WOKEN_STREAK {
            if let Some(g) = self.woken.borrow_mut().pop_front() {
                self.woken_streak.set(streak + 1);
                return Some(g);
            }
        }
        self.woken_streak.set(0);
        let g = self.pinned.borrow_mut().pop_front();
        g.or_else(|| self.woken.borrow_mut().pop_front())
    }

    /// Takes in the inbox: its coroutines join `woken`.
    #[cold]
    fn take_inbox(&self) {
        let mut inbox = std::mem::take(&mut *self.inbox_buf.borrow_mut());
        self.remote().take_inbox(&mut inbox);
        for g in inbox.drain(..) {
            // A coroutine placed here (`placement.rs`) starts now, so that its
            // worker's load counts it at once.
            if g.header.is_started() || self.start(&g) {
                self.woken.borrow_mut().push_back(g);
            }
        }
        *self.inbox_buf.borrow_mut() = inbox;
    }

    /// Takes a batch of up to half a queue from the injector; returns one.
    fn take_injected(&self, p: &Held) -> Option<G> {
        let inject = &self.shared.inject;
        if inject.is_empty() {
            return None;
        }
        let mut local = p.local.borrow_mut();
        let room = local.remaining_slots() / 2 + 1;
        let n = (inject.len() / self.shared.workers).clamp(1, room);
        let mut batch = inject.pop_n(n);
        let first = batch.next();
        local.push_back(batch);
        first
    }

    fn steal(&self, p: &Held) -> Option<G> {
        let n = self.shared.allp.len();
        if n == 1 {
            return None;
        }
        if !self.searching.get() {
            if !self.shared.idle.try_start_searching() {
                return None;
            }
            self.searching.set(true);
        }
        let start = (p.next_rand() % n as u64) as usize;
        for i in 0..n {
            let v = (start + i) % n;
            if Some(v) == self.p.get() {
                continue;
            }
            let mut local = p.local.borrow_mut();
            let before = local.len();
            if let Some(g) = self.shared.allp[v].steal.steal_into(&mut local) {
                let got = (local.len() - before) as u64 + 1;
                Counters::bump(&self.counters().stolen, got);
                Counters::bump(&self.counters().steals, 1);
                if let Some(t) = &self.trace {
                    t.instant(self.index, tr::Kind::Steal, 0, v as u32, got);
                }
                return Some(g);
            }
        }
        self.take_injected(p)
    }

    fn maintenance(&self) {
        if self.shared.shutdown.load(Ordering::Relaxed) {
            self.begin_shutdown();
        }
        self.fire_timers();
        // A busy worker still reaps IO readiness now and then.
        self.poll_net();
    }

    /// Polls this worker's netpoller without blocking if any descriptor is
    /// registered with it; true if that made work for this worker.
    fn poll_net(&self) -> bool {
        self.remote().io.is_active()
            && self.poller.borrow_mut().poll(Some(Duration::ZERO)) != 0
            && self.has_local_work()
    }

    fn fire_timers(&self) -> usize {
        let portable = self.shared.fire_portable_timers(Instant::now());
        portable + self.fire_own_timers()
    }

    /// Fires this M's due timers (a dedicated thread fires only these: a portable
    /// timer may hold the last reference to a coroutine that never ran here).
    fn fire_own_timers(&self) -> usize {
        let mut timers = self.timers.borrow_mut();
        if timers.len() == 0 {
            return 0;
        }
        let due: Vec<G> = {
            let mut v = Vec::new();
            let now = Instant::now();
            timers.expire(now, |g, deadline| {
                if let Some(t) = &self.trace {
                    let late = now.saturating_duration_since(deadline).as_nanos() as u64;
                    t.instant(self.index, tr::Kind::Timer, g.header.id, tr::NONE, late);
                }
                v.push(g);
            });
            v
        };
        self.publish_next_timer(&timers);
        drop(timers);
        let n = due.len();
        for (i, g) in due.into_iter().enumerate() {
            // The earliest is due already: it goes ahead even of `runnext`; the
            // rest wait in order in `woken` (see `push_woken`).
            self.urgent.set(i == 0);
            park::unpark(&g);
        }
        self.urgent.set(false);
        n
    }

    // ---- running a coroutine ----

    #[inline(always)]
    fn run_task(&self, g: G) {
        let h = &g.header;
        if h.state.load(Ordering::Relaxed) == QUEUED {
            // Nobody else changes QUEUED: wakers see it and back off.
            h.state.store(RUNNING, Ordering::Relaxed);
        }
        let first = !h.is_started();
        if first && !self.start(&g) {
            return;
        }
        if h.migratable {
            debug_assert!(
                !self.dedicated,
                "a migratable coroutine on a dedicated thread"
            );
            h.home.store(self.index as u32, Ordering::Relaxed);
        }
        let counters = self.counters();
        Counters::bump(&counters.switches, 1);
        counters.running.store(h.id, Ordering::Relaxed);
        self.budget.set(super::budget::BUDGET);
        self.current.set(Some(g.as_ptr()));
        // SAFETY: this worker owns `g` now (popped from a queue); its fiber was created
        // on this thread, or it is migratable and its owner vouched for moving it.
        let fiber = unsafe { h.fiber() }
            .as_mut()
            .expect("started coroutine has a fiber");
        self.enter_user();
        // Tracing off, this branch is all a run slice pays for it.
        let r = match &self.trace {
            None => fiber.resume(),
            Some(t) => self.resume_traced(t, fiber, h, first),
        };
        self.leave_user();
        self.current.set(None);
        match r {
            Some(Request::Yield) => self.push_back(g),
            Some(Request::Park) => {
                // Counted before it can be seen PARKED, so the waker's decrement never
                // comes first.
                let counted = super::wait::deadlockable(h.wait.load(Ordering::Relaxed));
                if counted {
                    self.shared.parked_untimed.fetch_add(1, Ordering::SeqCst);
                }
                if h.state
                    .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    if counted {
                        self.shared.parked_untimed.fetch_sub(1, Ordering::SeqCst);
                    }
                    // Unparked before it finished switching out: the token is
                    // consumed here and it runs again soon.
                    h.state.store(RUNNING, Ordering::Relaxed);
                    self.push_woken_self(g);
                } else {
                    Counters::bump(&counters.parks, 1);
                }
            }
            None => self.finished(g),
        }
    }

    /// Runs `fiber` and records the slice: when, how long, how it ended.
    #[inline(never)]
    fn resume_traced(
        &self,
        t: &Arc<Trace>,
        fiber: &mut crate::coroutine::FiberBox<Request>,
        h: &super::task::Header,
        first: bool,
    ) -> Option<Request> {
        let at = t.now();
        let r = fiber.resume();
        let dur = t.now().saturating_sub(at);
        let end = match r {
            Some(Request::Yield) => tr::END_YIELD,
            Some(Request::Park) => tr::END_PARK + h.wait.load(Ordering::Relaxed) as u8,
            None => tr::END_DONE,
        };
        let e = tr::Event {
            at,
            dur,
            g: h.id,
            kind: tr::Kind::Run,
            end: end | if first { tr::END_FIRST } else { 0 },
            other: tr::NONE,
        };
        t.record(self.index, e, h.name().filter(|_| first));
        r
    }

    fn push_woken_self(&self, g: G) {
        if let Some(old) = self.runnext.replace(Some(g)) {
            self.push_back(old);
        }
    }
}
