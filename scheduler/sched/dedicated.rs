//! Dedicated threads: a coroutine with an OS thread of its own for its whole life
//! (Go's `runtime.LockOSThread` in a goroutine that never unlocks).
//!
//! A dedicated thread is an M without a P: it runs the one coroutine it was made
//! for (with that coroutine's timers and IO, on a netpoller of its own), sends what
//! that coroutine spawns or wakes elsewhere to the workers, takes part in no
//! stealing or idle protocol, and exits when the coroutine ends. Its slot (an index
//! in `Shared::remotes` past the workers and the extra Ms, and the poller reserved
//! for it) then goes back to a free list for the next one. Its threads are made
//! through the template thread (`template.rs`), so a dedicated thread that changed
//! its namespaces, credentials or signal mask passes none of that on.

use super::driver::Driver;
use super::shared::Shared;
use super::task::G;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::io;
use std::sync::Arc;

/// A slot's netpoller, there while no thread runs in the slot.
type Parked = Mutex<Option<Box<dyn Driver>>>;

/// A runtime's dedicated-thread slots.
pub(crate) struct Dedicated {
    /// The first slot's index in `Shared::remotes`; the slots run to its end.
    pub(crate) base: usize,
    /// Each slot's netpoller while no thread runs there.
    pollers: Box<[Parked]>,
    /// Slots no thread runs in (offsets from `base`).
    free: Mutex<Vec<usize>>,
    /// Threads made so far and not known to have ended, joined by `Runtime::drop`.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Dedicated threads running now.
    live: AtomicUsize,
}

impl Dedicated {
    /// Slots from `base` on, one per poller.
    pub(crate) fn new(base: usize, pollers: Vec<Box<dyn Driver>>) -> Dedicated {
        let n = pollers.len();
        Dedicated {
            base,
            pollers: pollers.into_iter().map(|p| Mutex::new(Some(p))).collect(),
            // Popped from the end: slot 0 first.
            free: Mutex::new((0..n).rev().collect()),
            threads: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
        }
    }

    /// Dedicated threads running now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The threads made so far and not joined yet (`Runtime::drop` joins them).
    pub(crate) fn take_threads(&self) -> Vec<std::thread::JoinHandle<()>> {
        std::mem::take(&mut *self.threads.lock())
    }

    pub(super) fn take_poller(&self, index: usize) -> Box<dyn Driver> {
        self.pollers[index - self.base]
            .lock()
            .take()
            .expect("a dedicated slot's poller is there while no thread runs in it")
    }

    /// The thread of slot `index` is done with it: the next one may take it.
    pub(super) fn release(&self, index: usize, poller: Box<dyn Driver>) {
        *self.pollers[index - self.base].lock() = Some(poller);
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.free.lock().push(index - self.base);
    }
}

/// Starts `g`, a new coroutine, on a thread of its own. Gives it back with the
/// error if the runtime is shutting down, every slot is taken, or the OS refused
/// the thread.
pub(crate) fn spawn(rt: &Arc<Shared>, g: G) -> Result<(), (G, io::Error)> {
    let d = &rt.dedicated;
    // Held while the thread is made: `Runtime::drop` sets `shutdown`, then takes
    // this lock, so every thread made before it saw `shutdown` is joined.
    let mut threads = d.threads.lock();
    if rt.shutdown.load(Ordering::SeqCst) {
        let e = io::Error::other("the corun runtime is shutting down: it no longer accepts new coroutines (spawn before dropping the Runtime)");
        return Err((g, e));
    }
    threads.retain(|t| !t.is_finished());
    if let Err(e) = super::template::ensure_started() {
        let e = io::Error::new(e.kind(), format!("corun could not start its template thread, which makes threads for dedicated ones: {e}"));
        return Err((g, e));
    }
    let Some(slot) = d.free.lock().pop() else {
        let e = io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "all {} dedicated threads of corun runtime '{}' are in use: raise RuntimeBuilder::dedicated_threads, or let one end first",
                d.pollers.len(),
                rt.name
            ),
        );
        return Err((g, e));
    };
    let index = d.base + slot;
    let remote = &rt.remotes[index];
    // Counted here, before the thread exists (its only other writer), so that
    // deadlock detection counts the coroutine alive from its spawn on.
    remote.counters.spawned.fetch_add(1, Ordering::Relaxed);
    d.live.fetch_add(1, Ordering::Relaxed);
    remote.reopen_inbox();
    let name = match g.header.name() {
        Some(n) => n.to_owned(),
        None => format!("{}-dedicated", rt.name),
    };
    if let Err(g) = rt.place(index, g, false) {
        unreachable!(
            "slot {index} was just reopened, yet refused {}",
            g.header.id
        );
    }
    let sh = rt.clone();
    match super::template::spawn(name, move || super::worker::run_dedicated(sh, index)) {
        Ok(t) => {
            threads.push(t);
            Ok(())
        }
        Err(e) => {
            // No thread ever ran in the slot: take the coroutine back and free it.
            let mut back = std::collections::VecDeque::new();
            remote.take_inbox(&mut back);
            remote.counters.spawned.fetch_sub(1, Ordering::Relaxed);
            d.live.fetch_sub(1, Ordering::Relaxed);
            d.free.lock().push(slot);
            let g = back.pop_front().expect("placed above");
            let e = io::Error::new(
                e.kind(),
                format!("corun could not start a dedicated thread: {e}"),
            );
            Err((g, e))
        }
    }
}
