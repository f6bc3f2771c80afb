//! sysmon: the runtime's monitor thread (Go's `sysmon`).
//!
//! It sleeps 20 us, backing off to 10 ms while it finds nothing to do, and each
//! time it wakes:
//! - asks the coroutine an M has run for [`HOG`] without a switch to yield at its
//!   next budget point (Go's preemption, cooperatively), and when it has not done so
//!   `PREEMPT_GRACE` later (a CPU loop with no budget point, or a call blocking its
//!   thread), hands off the M's P (see `handoff.rs`) and says so once per episode
//!   on stderr;
//! - asks a busy M whose earliest timer is due to fire it (its running coroutine
//!   yields at its next budget point);
//! - fires the timers of `migratable` coroutines that are due (Ms fire them too;
//!   sysmon makes sure they fire while every M is stuck);
//! - when a P is free and portable work waits but no M is asleep to take it (all
//!   are stuck or busy elsewhere), starts a new M, up to the runtime's cap of extra
//!   threads.

use super::shared::{Shared, POKE_HANDBACK, POKE_PREEMPT, POKE_TIMERS};
use super::thread_clock::Verdict;
use super::trace::Kind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an M may run one coroutine before sysmon hands its P to another M.
pub(super) const HOG: Duration = Duration::from_millis(10);
/// How long a coroutine asked to yield at `HOG` has (from sysmon's asking, which
/// may come a sleep of sysmon's later) before its M counts as stuck.
const PREEMPT_GRACE: Duration = Duration::from_millis(5);
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);

/// What sysmon remembers of one M between its looks.
#[derive(Clone, Copy)]
struct Seen {
    switches: u64,
    since: Instant,
    /// When sysmon asked the running coroutine to yield (`POKE_PREEMPT`), and the
    /// thread's CPU time then.
    poked: Option<(Instant, Option<Duration>)>,
    warned: bool,
    /// Counted once as descheduled this episode.
    descheduled: bool,
}

pub(crate) fn run(shared: Arc<Shared>) {
    // Sysmon never holds up a coroutine: for deadlock detection it is always idle.
    let _idle = super::deadlock::Asleep::enter();
    super::wait::refresh_stamp();
    let mut dead = super::deadlock::Watch::default();
    let mut dumped = (shared.observer.sigquit_generation)();
    let start = Instant::now();
    let mut seen = vec![
        Seen {
            switches: 0,
            since: start,
            poked: None,
            warned: false,
            descheduled: false,
        };
        shared.remotes.len()
    ];
    let mut delay = MIN_DELAY;
    let mut idle_rounds = 0u32;
    let mut starved_rounds = 0u32;
    let mut warnings = super::warnings::Route::new(shared.warnings.clone());
    let (mut last_handback, mut handback_next) = (start, 0usize);
    loop {
        let mut wake_at = Instant::now() + delay;
        if let Some(d) = shared.next_portable_deadline() {
            wake_at = wake_at.min(d);
        }
        shared.sysmon_sleeper.park(Some(wake_at));
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        super::wait::refresh_stamp();
        if let Some(t) = &shared.trace {
            t.check_time();
        }
        let mut acted = shared.fire_portable_timers(now) > 0;
        let mut stuck = 0;
        let now_ns = now.saturating_duration_since(shared.epoch).as_nanos() as u64;
        for (i, s) in seen.iter_mut().enumerate().take(shared.ms_started()) {
            let r = &shared.remotes[i];
            // A timer due on an M that is busy: its running coroutine yields at its
            // next budget point and the M fires it (an idle M sleeps until it).
            if r.next_timer.load(Ordering::Relaxed) <= now_ns
                && r.counters.running.load(Ordering::Relaxed) != 0
                && r.poke.load(Ordering::Relaxed) & POKE_TIMERS == 0
            {
                r.poke.fetch_or(POKE_TIMERS, Ordering::Relaxed);
            }
            let switches = r.counters.switches.load(Ordering::Relaxed);
            // `running` is the id of the coroutine the M switched to last, cleared
            // when it sleeps or waits for a P: with no switch since, it is still in
            // that coroutine (the scheduler's own work between switches is short).
            if r.counters.running.load(Ordering::Relaxed) == 0 || switches != s.switches {
                *s = Seen {
                    switches,
                    since: now,
                    poked: None,
                    warned: false,
                    descheduled: false,
                };
                continue;
            }
            if now.duration_since(s.since) < HOG {
                continue;
            }
            // Go's preemption at 10 ms, cooperatively: it yields at its next budget
            // point. Only one that does not is stuck (a blocking call, or a loop
            // with no budget point): its P goes, with a warning.
            let (poked, cpu0) = *s.poked.get_or_insert_with(|| {
                r.poke.fetch_or(POKE_PREEMPT, Ordering::Relaxed);
                if let Some(t) = &shared.trace {
                    let g = r.counters.running.load(Ordering::Relaxed);
                    t.instant(t.sysmon_track(), Kind::Preempt, g, i as u32, 0);
                }
                (now, r.thread.cpu_time())
            });
            if now.duration_since(poked) < PREEMPT_GRACE {
                acted = true; // look again soon
                continue;
            }
            stuck += 1;
            if let Ok(to) = shared.ps.revoke(i, &r.claim) {
                acted = true;
                shared.handoffs.fetch_add(1, Ordering::Relaxed);
                if let Some(t) = &shared.trace {
                    let g = r.counters.running.load(Ordering::Relaxed);
                    let to = to.map_or(u64::MAX, |w| w as u64);
                    t.instant(t.sysmon_track(), Kind::Handoff, g, i as u32, to);
                }
                if let Some(w) = to {
                    shared.unpark_worker(w);
                }
            }
            if !s.warned && now.duration_since(s.since) >= shared.warn_after {
                // Judged on the thread's CPU time since sysmon asked it to yield; a
                // thread the OS kept off the CPU is judged again next round.
                let cpu = cpu0
                    .zip(r.thread.cpu_time())
                    .map(|(a, b)| b.saturating_sub(a));
                let verdict = r.thread.verdict(now.duration_since(poked), cpu);
                let count = match verdict {
                    Verdict::Computing => &shared.stalls.computing,
                    Verdict::Blocked => &shared.stalls.blocked,
                    Verdict::Unknown => &shared.stalls.unknown,
                    Verdict::Descheduled if s.descheduled => continue,
                    Verdict::Descheduled => {
                        s.descheduled = true;
                        shared.stalls.descheduled.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                s.warned = true;
                count.fetch_add(1, Ordering::Relaxed);
                if warnings.is_on() {
                    let line = hog_warning(&shared, i, now.duration_since(s.since), verdict);
                    warnings.say(now, line);
                }
            }
        }
        warnings.flush(now);
        // An M whose coroutines are stuck behind a missing P (its own was handed off
        // while it was stuck, and the Ms holding the Ps never sleep): every HOG, one
        // holder gives its P back at its next switch, so Ps go round.
        if now.duration_since(last_handback) >= HOG {
            if let Some(w) = shared.ps.first_waiter() {
                if shared.remotes[w].registry.len() > 0 {
                    let ms = shared.ms_started();
                    let holder = (1..=ms)
                        .map(|k| (handback_next + k) % ms)
                        .find(|&i| i != w && shared.ps.held(i).is_some());
                    if let Some(i) = holder {
                        shared.remotes[i]
                            .poke
                            .fetch_or(POKE_HANDBACK, Ordering::Relaxed);
                        handback_next = i;
                        last_handback = now;
                        acted = true;
                    }
                }
            }
        }
        // An M is stuck, a P is free, portable work waits, and nobody asleep could be
        // woken to take it: every other M is stuck or busy. Seen twice in a row (an M
        // may be on its way to sleep), start a new M.
        if stuck > 0 && shared.ps.free() > 0 && shared.has_portable_work() {
            if shared.idle.sleeping() > 0 {
                // The idle protocol wakes sleepers for new work; this only backs it up.
                shared.notify_parked();
                starved_rounds = 0;
            } else {
                starved_rounds += 1;
                if starved_rounds < 2 {
                    acted = true; // look again soon
                } else if shared.start_spare() {
                    acted = true;
                    starved_rounds = 0;
                }
                // Else the cap is reached: back off like an idle round.
            }
        } else {
            starved_rounds = 0;
        }
        dead.look(&shared);
        let g = (shared.observer.sigquit_generation)();
        if g != dumped {
            dumped = g;
            eprintln!("SIGQUIT: corun dump\n{}", (shared.observer.dump)(&shared));
        }
        if acted {
            idle_rounds = 0;
            delay = MIN_DELAY;
        } else {
            idle_rounds += 1;
            if idle_rounds > 50 {
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    }
}

/// The warning for M `i`, whose coroutine has gone `held` without a switch and
/// ignored the request to yield (not for a thread the OS descheduled).
fn hog_warning(shared: &Shared, i: usize, held: Duration, verdict: Verdict) -> String {
    let r = &shared.remotes[i];
    let id = r.counters.running.load(Ordering::Relaxed);
    // The registry holds started coroutines with their names (a migratable one is
    // only named by id).
    let label = r
        .registry
        .lock()
        .iter()
        .find(|e| e.g.header.id == id)
        .map_or_else(|| format!("#{id}"), |e| e.g.header.label());
    let ms = held.as_millis();
    let why = match verdict {
        Verdict::Computing => format!(
            "coroutine {label} has computed on worker {i} for {ms} ms without reaching a \
             yield point (a channel or lock operation, IO, yield_now); call \
             corun::yield_now() in its loop"
        ),
        Verdict::Blocked => format!(
            "coroutine {label} has been blocked in a system call on worker {i} for {ms} ms; \
             run the call in corun::blocking(..), or await a future with \
             corun::await_future(..) rather than a runtime's block_on"
        ),
        Verdict::Unknown | Verdict::Descheduled => format!(
            "coroutine {label} has held worker {i} for {ms} ms without a switch; if it \
             blocks, run the call in corun::blocking(..) (a future: \
             corun::await_future(..)); if it computes, call \
             corun::yield_now() in its loop"
        ),
    };
    format!(
        "corun: {why}. Its P went to another thread, but the coroutines started on worker \
         {i} wait for it (they never change thread: see docs/safety.md)."
    )
}
