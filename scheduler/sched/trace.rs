//! The scheduler trace's recorder (`CORUN_TRACE=<file>`): what each M did, as
//! events in a bounded buffer per M. The core records here; `observe::trace` writes
//! the file (Chrome trace-event JSON) once a bound is reached, the runtime is
//! dropped, or the process exits.
//!
//! Off, a runtime has no `Trace`: each place that records is one branch on an
//! `Option` (the run slice, a spawn from a coroutine, a steal, a timer fired, a
//! cross-thread wake, sysmon's hand-off), and nothing else runs. On, an event costs
//! a clock read (two for a run slice) and one lock of a buffer that only its own M
//! (or, for the last two tracks, sysmon or plain threads) takes while recording.
//!
//! Bounds: the events of all buffers together never pass `max_events` (each buffer
//! takes permits in chunks from one counter), and none is recorded after `limit`
//! from the runtime's start. Reaching either stops the recording for good and has
//! the file written (`on_stop`, set by the builder: observe's writer).

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::sync::Arc;
use std::time::Instant;

/// Permits a buffer takes from the shared count at a time, at most.
const CHUNK: usize = 4096;

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A coroutine ran on this M from `at` for `dur`; `end` says how it stopped.
    Run,
    /// A coroutine was spawned; `other`: the worker it was placed on, or one of the
    /// `TO_*` values.
    Spawn,
    /// This M stole `dur` coroutines from the ring of P `other`.
    Steal,
    /// A coroutine of worker `other` was woken from this thread (it goes to that
    /// worker's inbox: a wake across threads).
    Wake,
    /// A timer fired `dur` ns after its deadline, waking the coroutine.
    Timer,
    /// Sysmon took the P of M `other`, stuck in coroutine `g`, and gave it to M
    /// `dur` (`u64::MAX`: to the free list).
    Handoff,
    /// Sysmon asked the coroutine `g` running on M `other` to yield (10 ms in it).
    Preempt,
    /// This M gave its P back for an M whose coroutines waited for one.
    Handback,
    /// This M waited `dur` ns for a P.
    WaitP,
}

/// [`Event::other`] of a spawn: the spawner's `runnext`.
pub(crate) const TO_RUNNEXT: u32 = u32::MAX;
/// [`Event::other`] of a spawn: the global injector (a spawn from outside).
pub(crate) const TO_INJECTOR: u32 = u32::MAX - 1;
/// [`Event::other`]: none.
pub(crate) const NONE: u32 = u32::MAX;

/// [`Event::end`] of a run slice: it yielded (`yield_now`, the budget, a poke).
pub(crate) const END_YIELD: u8 = 0;
/// [`Event::end`] of a run slice: it returned.
pub(crate) const END_DONE: u8 = 1;
/// [`Event::end`] of a run slice: it parked; `END_PARK + reason` (`wait::Reason`).
pub(crate) const END_PARK: u8 = 2;
/// Flag in [`Event::end`]: the coroutine's first slice (it started on this M).
pub(crate) const END_FIRST: u8 = 0x80;

/// One event, 32 bytes. Times are nanoseconds since the runtime's epoch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub(crate) at: u64,
    /// A duration in nanoseconds, or a count (see [`Kind`]).
    pub(crate) dur: u64,
    /// The coroutine's id (0: none).
    pub(crate) g: u64,
    pub(crate) kind: Kind,
    pub(crate) end: u8,
    /// A worker or P index (see [`Kind`]).
    pub(crate) other: u32,
}

/// One track's buffer.
#[derive(Default)]
pub(crate) struct Buf {
    pub(crate) events: Vec<Event>,
    /// Names of the named coroutines whose first slice is in `events`.
    pub(crate) names: Vec<(u64, Box<str>)>,
    /// Events it may still record before taking more permits.
    quota: usize,
}

/// Why the recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Stop {
    Running = 0,
    /// The time bound.
    Time,
    /// The size bound.
    Size,
    /// The runtime was dropped.
    Dropped,
    /// The process exited.
    Exit,
}

impl Stop {
    pub(crate) fn truncated(self) -> bool {
        matches!(self, Stop::Time | Stop::Size)
    }
}

/// A runtime's trace: the buffers, the bounds, the file it goes to.
pub(crate) struct Trace {
    /// Where the trace goes (for messages).
    pub(crate) path: std::path::PathBuf,
    /// The file, open since the runtime was built; taken by the one write.
    pub(crate) sink: Mutex<Option<std::fs::File>>,
    pub(crate) epoch: Instant,
    /// The runtime's name and its number of workers (the rest of the Ms are extra).
    pub(crate) name: String,
    pub(crate) workers: usize,
    /// The first dedicated thread's M index (`dedicated.rs`): its tracks follow.
    pub(crate) dedicated_base: usize,
    /// The time bound, in nanoseconds since `epoch`, and the size bound, in events.
    pub(crate) limit_ns: u64,
    pub(crate) max_events: usize,
    /// Permits handed out so far, and how many a buffer takes at a time (small
    /// enough that every track gets some under a small bound).
    reserved: AtomicUsize,
    chunk: usize,
    stopped: AtomicBool,
    /// Held while `halt` stops the recording.
    halting: Mutex<()>,
    why: AtomicU8,
    /// When it stopped, in nanoseconds since `epoch`.
    pub(crate) stopped_at: AtomicU64,
    /// Where a failure to write the file is reported (the runtime's route).
    pub(crate) warnings: super::warnings::Warnings,
    /// One per M, then sysmon's, then one for every other thread.
    pub(crate) bufs: Box<[Mutex<Buf>]>,
    /// Called once, by whichever thread reaches a bound: writes the file.
    on_stop: fn(&Arc<Trace>),
}

impl Trace {
    /// A trace of a runtime with `ms` Ms (workers, room for extra ones, then the
    /// dedicated threads' slots from `dedicated_base`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        path: std::path::PathBuf,
        file: std::fs::File,
        epoch: Instant,
        name: String,
        workers: usize,
        dedicated_base: usize,
        ms: usize,
        limit: std::time::Duration,
        max_events: usize,
        warnings: super::warnings::Warnings,
        on_stop: fn(&Arc<Trace>),
    ) -> Trace {
        Trace {
            path,
            sink: Mutex::new(Some(file)),
            epoch,
            name,
            workers,
            dedicated_base,
            limit_ns: u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX),
            max_events,
            reserved: AtomicUsize::new(0),
            chunk: (max_events / (4 * (ms + 2))).clamp(1, CHUNK),
            stopped: AtomicBool::new(false),
            halting: Mutex::new(()),
            why: AtomicU8::new(Stop::Running as u8),
            stopped_at: AtomicU64::new(0),
            warnings,
            bufs: (0..ms + 2).map(|_| Mutex::new(Buf::default())).collect(),
            on_stop,
        }
    }

    /// Sysmon's track.
    pub(crate) fn sysmon_track(&self) -> usize {
        self.bufs.len() - 2
    }

    /// The track of threads that are neither an M nor sysmon.
    pub(crate) fn other_track(&self) -> usize {
        self.bufs.len() - 1
    }

    /// Now, in nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Why it stopped (`Running` while it records).
    pub(crate) fn stop_reason(&self) -> Stop {
        match self.why.load(Ordering::Acquire) {
            1 => Stop::Time,
            2 => Stop::Size,
            3 => Stop::Dropped,
            4 => Stop::Exit,
            _ => Stop::Running,
        }
    }

    /// Stops the recording; true for the call that stopped it. Whoever takes a
    /// buffer after this sees every event that will ever be in it: recorders check
    /// `stopped` under the buffer's lock.
    pub(crate) fn halt(&self, why: Stop) -> bool {
        // Under a lock, so that a caller that loses the race (and goes on to write
        // the file) finds the winner's reason and time already stored.
        if self.stopped.load(Ordering::Relaxed) {
            // Every record past the time bound comes here: no lock for those.
            return false;
        }
        let _one = self.halting.lock();
        if self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        self.stopped_at.store(self.now(), Ordering::Relaxed);
        self.why.store(why as u8, Ordering::Release);
        self.stopped.store(true, Ordering::SeqCst);
        true
    }

    /// A bound is reached: stops, and has the file written.
    fn bound(self: &Arc<Self>, why: Stop) {
        if self.halt(why) {
            (self.on_stop)(self);
        }
    }

    /// Sysmon's look: stops at the time bound even when nothing records.
    pub(crate) fn check_time(self: &Arc<Self>) {
        if !self.stopped.load(Ordering::Relaxed) && self.now() >= self.limit_ns {
            self.bound(Stop::Time);
        }
    }

    /// Records `e` on `track`, with the name of its coroutine if it is the first
    /// slice of a named one.
    pub(crate) fn record(self: &Arc<Self>, track: usize, e: Event, name: Option<&str>) {
        if e.at >= self.limit_ns {
            return self.bound(Stop::Time);
        }
        let Some(buf) = self.bufs.get(track) else {
            return;
        };
        let mut b = buf.lock();
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        if b.quota == 0 {
            let got = self.reserved.fetch_add(self.chunk, Ordering::Relaxed);
            if got >= self.max_events {
                drop(b);
                return self.bound(Stop::Size);
            }
            b.quota = self.chunk.min(self.max_events - got);
            let more = b.quota;
            b.events.reserve(more);
        }
        b.quota -= 1;
        b.events.push(e);
        if let Some(n) = name {
            b.names.push((e.g, n.into()));
        }
    }

    /// An instant event now.
    pub(crate) fn instant(self: &Arc<Self>, track: usize, kind: Kind, g: u64, other: u32, n: u64) {
        let e = Event {
            at: self.now(),
            dur: n,
            g,
            kind,
            end: 0,
            other,
        };
        self.record(track, e, None);
    }
}
