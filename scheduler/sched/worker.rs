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
        // Taken out first: no cell is borrowed while that code runs.
        let timers = self.timers.borrow_mut().clear();
        let woken = std::mem::take(&mut *self.woken.borrow_mut());
        let pinned = std::mem::take(&mut *self.pinned.borrow_mut());
        drop((timers, self.runnext.take(), woken, pinned));
        // Sockets still registered here (handed to other coroutines) move on.
        self.poller.borrow_mut().retire();
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

    // ---- queues, called from coroutines and wakers on this thread ----

    /// A coroutine spawned by a coroutine of this worker: it runs next (Go's
    /// `runnext`), and the one it displaces becomes stealable.
    pub(super) fn push_spawned(&self, mut g: G) {
        Counters::bump(&self.counters().spawned, 1);
        let spreader = self.spreader.get();
        if spreader != 0 && self.in_user.get() && self.current_id() == Some(spreader) {
            // Through the inbox even here, so that the load counts it at once and
            // it starts in the scheduler (starting may drop its closure: user code).
            let to = super::placement::least_loaded(&self.shared, self.index);
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
    fn trace_spawn(&self, id: u64, to: u32) {
        if let Some(t) = &self.trace {
            t.instant(self.index, tr::Kind::Spawn, id, to, 0);
        }
    }

    /// The coroutine running here has accepted a connection (`placement.rs`).
    pub(super) fn note_accept(&self, id: u64) {
        self.spreader.set(id);
    }

    fn current_id(&self) -> Option<u64> {
        // SAFETY: `current` is the coroutine running on this thread, alive while it
        // runs (its worker's registry holds it).
        self.current.get().map(|t| unsafe { t.as_ref() }.header.id)
    }

    /// A coroutine woken on this thread. From a coroutine it runs next (`runnext`,
    /// Go's order), the one it displaces going to the back of its queue. From the
    /// scheduler (timers, IO, shutdown) it takes `runnext` if that is free or it is
    /// the earliest of the timers firing now (`urgent`), else it waits in order at
    /// the back of `woken`, still ahead of the ready ones.
    pub(super) fn push_woken(&self, g: G) {
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
    fn push_woken_back(&self, g: G) {
        if g.header.is_started() && !g.header.migratable {
            self.woken.borrow_mut().push_back(g);
        } else {
            self.push_back(g);
        }
    }

    /// The back of the queue that fits: `pinned` for started coroutines bound here,
    /// the P's ring (stealable; wakes a sleeper) for portable ones.
    fn push_back(&self, g: G) {
        if g.header.is_started() && !g.header.migratable {
            self.pinned.borrow_mut().push_back(g);
        } else {
            self.push_portable(g);
        }
    }

    /// Pushes a portable coroutine to the P's ring; from a coroutine, claims the P
    /// first (see `handoff.rs`). Without a P, to the injector.
    fn push_portable(&self, g: G) {
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
    fn leave_user(&self) {
        self.in_user.set(false);
        if !self.remote().claim.leave_user(&self.shared.ps, self.index) {
            self.set_p(None);
        }
    }

    /// Enters user code: sysmon may take the P until `leave_user`.
    #[inline]
    fn enter_user(&self) {
        self.in_user.set(true);
        self.remote().claim.enter_user();
    }

    pub(super) fn add_timer(&self, deadline: Instant, g: G) {
        let mut timers = self.timers.borrow_mut();
        timers.add(deadline, g);
        self.publish_next_timer(&timers);
    }

    /// Tells sysmon when this M's earliest timer is due (it pokes the M then).
    fn publish_next_timer(&self, timers: &Timers) {
        let at = timers.next_deadline().map_or(u64::MAX, |d| {
            let ns = d.saturating_duration_since(self.shared.epoch).as_nanos();
            u64::try_from(ns).unwrap_or(u64::MAX - 1)
        });
        self.remote().next_timer.store(at, Ordering::Relaxed);
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

    /// Gives `g` a stack and a fiber on this worker; false if it could not start.
    fn start(&self, g: &G) -> bool {
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
                let err = super::spawn_error::SpawnError::stack(h, e);
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
    fn with_stacks<R>(&self, f: impl FnOnce(&StackPool, &mut StackCache) -> R) -> R {
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
    fn abandon(&self, g: &G, payload: Box<dyn std::any::Any + Send>) {
        g.abandon(payload);
        Counters::bump(&self.counters().finished, 1);
    }

    fn finished(&self, g: G) {
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

    // ---- Ps ----

    /// Takes a P, sleeping until one is given if none is free (see `handoff.rs`).
    /// Shutdown needs no P: the draining runs regardless.
    fn wait_for_p(&self) {
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
    fn wait_for_p_untraced(&self) -> bool {
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
    fn release_p(&self) {
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
    fn spin_for_work(&self) -> bool {
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

    fn timers_due(&self) -> bool {
        matches!(self.timers.borrow().next_deadline(), Some(d) if d <= Instant::now())
    }

    /// Whether this worker has something to run without looking at other workers.
    pub(super) fn has_local_work(&self) -> bool {
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

    fn sleep(&self) {
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
        let _idle = super::deadlock::Asleep::enter();
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

    // ---- shutdown ----

    /// Once: abandons unstarted coroutines here and cancels every started one bound
    /// here, youngest first, so scoped children unwind before their scope.
    fn begin_shutdown(&self) {
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
        drop(self.timers.borrow_mut().clear());
        let mut victims = self.started_here();
        // Migratable coroutines belong to no worker: every worker cancels those it
        // sees (cancelling twice is harmless) and stays until all have ended, so a
        // wake-up sent to any worker's inbox still finds it running.
        victims.extend(self.shared.migratable.lock().values().map(|e| e.g.clone()));
        self.cancel_all(victims);
    }

    /// The started coroutines bound to this M, alive.
    fn started_here(&self) -> Vec<G> {
        let reg = self.remote().registry.lock();
        reg.iter().map(|e| e.g.clone()).collect()
    }

    /// Cancels `victims`, youngest first, so scoped children unwind before their
    /// scope.
    fn cancel_all(&self, mut victims: Vec<G>) {
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

    fn is_drained(&self) -> bool {
        self.remote().registry.len() == 0
            && !self.has_local_work()
            && self.shared.migratable.lock().is_empty()
    }
}
