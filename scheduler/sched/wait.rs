//! Why a coroutine waits: the reason a waiting primitive passes to `park`, and the
//! word the core stores it in.
//!
//! The core does not interpret reasons: a primitive names itself when it parks
//! (`park::park_for(Reason::Mutex)`), the core stores the value with a coarse
//! timestamp in the coroutine's header (one relaxed store, no allocation), and
//! `dump` prints it. The word is `reason | since << 8 | timeout << 40`: `since` in
//! milliseconds of the coarse monotonic clock (mod 2^32), `timeout` in milliseconds
//! (saturating at 2^24 - 1; 0: no deadline).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What a parked coroutine waits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Reason {
    /// Not parked yet, or a reason the dump does not know.
    #[default]
    Unknown = 0,
    /// `corun::park` / `park_timeout`.
    Park,
    /// `sleep` / `sleep_until`.
    Sleep,
    /// `JoinHandle::join`.
    Join,
    /// The end of a `scope` waiting for its coroutines.
    Scope,
    /// A channel send.
    ChanSend,
    /// A channel receive.
    ChanRecv,
    /// `select!`.
    Select,
    /// `sync::Mutex::lock`.
    Mutex,
    /// `sync::RwLock::read`.
    RwLockRead,
    /// `sync::RwLock::write`.
    RwLockWrite,
    /// `sync::Condvar::wait`.
    Condvar,
    /// `sync::Semaphore::acquire`.
    Semaphore,
    /// `sync::WaitGroup::wait`.
    WaitGroup,
    /// `sync::Barrier::wait`.
    Barrier,
    /// `sync::OnceLock` initialised by another coroutine.
    Once,
    /// A socket or file descriptor (the netpoller's waits).
    Io,
    /// A `corun::blocking` call running on the pool.
    Blocking,
    /// `corun::await_future`.
    Future,
}

const REASONS: [Reason; 19] = [
    Reason::Unknown,
    Reason::Park,
    Reason::Sleep,
    Reason::Join,
    Reason::Scope,
    Reason::ChanSend,
    Reason::ChanRecv,
    Reason::Select,
    Reason::Mutex,
    Reason::RwLockRead,
    Reason::RwLockWrite,
    Reason::Condvar,
    Reason::Semaphore,
    Reason::WaitGroup,
    Reason::Barrier,
    Reason::Once,
    Reason::Io,
    Reason::Blocking,
    Reason::Future,
];

impl Reason {
    /// As shown in a dump (Go's wording where Go has one).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reason::Unknown => "waiting",
            Reason::Park => "park",
            Reason::Sleep => "sleep",
            Reason::Join => "join",
            Reason::Scope => "scope wait",
            Reason::ChanSend => "chan send",
            Reason::ChanRecv => "chan receive",
            Reason::Select => "select",
            Reason::Mutex => "sync.Mutex.Lock",
            Reason::RwLockRead => "sync.RWMutex.RLock",
            Reason::RwLockWrite => "sync.RWMutex.Lock",
            Reason::Condvar => "sync.Cond.Wait",
            Reason::Semaphore => "semacquire",
            Reason::WaitGroup => "sync.WaitGroup.Wait",
            Reason::Barrier => "barrier",
            Reason::Once => "sync.Once",
            Reason::Io => "IO wait",
            Reason::Blocking => "blocking call",
            Reason::Future => "future",
        }
    }

    pub(crate) fn from_u8(b: u8) -> Reason {
        REASONS.get(b as usize).copied().unwrap_or(Reason::Unknown)
    }
}

/// Milliseconds of `CLOCK_MONOTONIC_COARSE` (a few ns through the vDSO, resolution
/// one kernel tick), mod 2^32.
#[inline]
pub(crate) fn coarse_ms() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux has
    // had since 2.6.32. On failure `ts` stays zero, which only skews a diagnostic.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

/// [`coarse_ms`] as of the last sysmon round of any runtime: what a park stamps, so
/// that a switch reads no clock (a vDSO call costs about a fifth of a yield). Stale
/// by sysmon's longest sleep, 10 ms, while sysmon runs freely (longer while it
/// prints, and frozen after shutdown); a dump reads the clock itself.
static STAMP: AtomicU32 = AtomicU32::new(0);

/// Refreshes the stamp parks use (sysmon, every round; a runtime, when built).
pub(crate) fn refresh_stamp() {
    STAMP.store(coarse_ms(), Ordering::Relaxed);
}

const TIMEOUT_MAX: u64 = (1 << 24) - 1;

/// The wait word for parking now on `reason`, until `deadline` if any.
#[inline]
pub(super) fn encode(reason: Reason, deadline: Option<Instant>) -> u64 {
    let timeout = match deadline {
        None => 0,
        Some(d) => {
            (d.saturating_duration_since(Instant::now()).as_millis() as u64).clamp(1, TIMEOUT_MAX)
        }
    };
    reason as u64 | (STAMP.load(Ordering::Relaxed) as u64) << 8 | timeout << 40
}

/// Whether a coroutine parked with this word waits, with no deadline, on a corun
/// primitive (another coroutine or a thread blocked in corun must wake it), as
/// deadlock detection counts it. Sleeps, IO, futures and `blocking` calls do not.
#[inline]
pub(super) fn deadlockable(word: u64) -> bool {
    word >> 40 == 0 && Reason::from_u8(word as u8).waits_on_corun()
}

impl Reason {
    /// Whether only another coroutine, or a thread blocked in corun, ends this wait
    /// (no timer, IO, future or pool thread does).
    pub(super) fn waits_on_corun(self) -> bool {
        matches!(
            self,
            Reason::Park
                | Reason::Join
                | Reason::Scope
                | Reason::ChanSend
                | Reason::ChanRecv
                | Reason::Select
                | Reason::Mutex
                | Reason::RwLockRead
                | Reason::RwLockWrite
                | Reason::Condvar
                | Reason::Semaphore
                | Reason::WaitGroup
                | Reason::Barrier
                | Reason::Once
        )
    }
}

/// A decoded wait word.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitInfo {
    pub(crate) reason: Reason,
    /// How long it has waited (coarse).
    pub(crate) waited: Duration,
    /// Time left until its deadline, if it has one (`None` past 4.6 hours).
    pub(crate) left: Option<Duration>,
    pub(crate) has_deadline: bool,
}

pub(crate) fn decode(word: u64, now_ms: u32) -> WaitInfo {
    let since = (word >> 8) as u32;
    let timeout = word >> 40;
    // A park stamped after `now_ms` was read would wrap to ~49 days: count it as 0.
    let waited = match now_ms.wrapping_sub(since) {
        w if w > i32::MAX as u32 => 0,
        w => w as u64,
    };
    WaitInfo {
        reason: Reason::from_u8(word as u8),
        waited: Duration::from_millis(waited),
        left: (timeout != 0 && timeout != TIMEOUT_MAX)
            .then(|| Duration::from_millis(timeout.saturating_sub(waited))),
        has_deadline: timeout != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        refresh_stamp();
        let w = encode(Reason::Sleep, Some(Instant::now() + Duration::from_secs(2)));
        let i = decode(w, coarse_ms().wrapping_add(500));
        assert_eq!(i.reason, Reason::Sleep);
        assert!(i.waited >= Duration::from_millis(490), "{i:?}");
        let left = i.left.unwrap();
        assert!(
            left <= Duration::from_millis(1510) && left >= Duration::from_millis(1400),
            "{i:?}"
        );
        let w = encode(Reason::Mutex, None);
        let i = decode(w, coarse_ms());
        assert_eq!(i.reason, Reason::Mutex);
        assert!(!i.has_deadline && i.left.is_none());
    }
}
