//! An M's thread as sysmon samples it from outside: its CPU clock and its state.
//!
//! Wall time alone cannot tell a coroutine that computes from a thread the OS has
//! descheduled on a loaded machine, or from one blocked in a system call: sysmon
//! reads the thread's CPU clock (`pthread_getcpuclockid`) when it suspects an M,
//! never on the switch path, and its state from `/proc` only before it warns.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// What sysmon concludes about a thread that has not switched for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It ran on a CPU a third of the time or more: the coroutine computes.
    Computing,
    /// It slept in the kernel: a blocking system call.
    Blocked,
    /// It was runnable but the OS ran other threads: nobody's fault here.
    Descheduled,
    /// Unknown (no clock, or `/proc` unreadable).
    Unknown,
}

/// The kernel thread id and CPU clock of an M's thread, set by the thread itself.
pub(crate) struct ThreadClock {
    tid: AtomicI32,
    clock: AtomicI32,
}

/// Not set yet: no thread has recorded itself.
const UNSET: i32 = i32::MIN;

impl ThreadClock {
    pub(crate) fn new() -> ThreadClock {
        ThreadClock {
            tid: AtomicI32::new(UNSET),
            clock: AtomicI32::new(UNSET),
        }
    }

    /// Records the calling thread (an M, when it starts).
    pub(crate) fn record_current(&self) {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `pthread_self()` names the calling thread, alive during the call;
        // `clock` is a valid place for the id to be written.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0 {
            self.clock.store(clock, Ordering::Relaxed);
        }
        // SAFETY: the gettid system call has no arguments and no preconditions (the
        // syscall, not glibc's wrapper, which needs glibc 2.30).
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// CPU time the thread has used, if its clock can be read.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        let clock = self.clock.load(Ordering::Relaxed);
        if clock == UNSET {
            return None;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec, the only memory the call
        // writes. A clock of a thread that has exited makes it fail (handled), read
        // its last value, or, if the kernel reused the thread id, read another
        // thread's CPU time: a wrong diagnostic at worst.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return None;
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// The thread's scheduling state letter from `/proc` (`R`, `S`, `D`, ...).
    fn state(&self) -> Option<u8> {
        let tid = self.tid.load(Ordering::Relaxed);
        if tid == UNSET {
            return None;
        }
        let stat = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
        // "tid (comm) S ...": the comm may hold spaces and parentheses; the state
        // follows the last ')'.
        let close = stat.iter().rposition(|&b| b == b')')?;
        stat.get(close + 2).copied()
    }

    /// Judges `wall` of no switch in which the thread used `cpu` of CPU time.
    pub(crate) fn verdict(&self, wall: Duration, cpu: Option<Duration>) -> Verdict {
        match cpu {
            // A third: a loop still computes on a box the OS shares three ways.
            Some(c) if c * 3 >= wall => Verdict::Computing,
            Some(_) => match self.state() {
                Some(b'R') => Verdict::Descheduled,
                Some(b'S' | b'D') => Verdict::Blocked,
                _ => Verdict::Unknown,
            },
            None => Verdict::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_thread_computes_and_a_sleeping_one_is_blocked() {
        let c = std::sync::Arc::new(ThreadClock::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let t = {
            let c = c.clone();
            std::thread::spawn(move || {
                c.record_current();
                let start = c.cpu_time().unwrap();
                ready_tx.send(start).unwrap();
                // 30 ms of CPU by its own clock, however long the OS makes it take.
                while c.cpu_time().unwrap() - start < Duration::from_millis(30) {
                    std::hint::spin_loop();
                }
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            })
        };
        let start = ready.recv().unwrap();
        rx.recv().unwrap();
        let spun = c.cpu_time().unwrap() - start;
        assert!(spun >= Duration::from_millis(30), "{spun:?}");
        std::thread::sleep(Duration::from_millis(20));
        let t1 = std::time::Instant::now();
        let cpu1 = c.cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = c.verdict(t1.elapsed(), cpu1.zip(c.cpu_time()).map(|(a, b)| b - a));
        t.join().unwrap();
        assert_eq!(slept, Verdict::Blocked);
        let ms = Duration::from_millis;
        assert_eq!(c.verdict(ms(10), Some(ms(8))), Verdict::Computing);
        assert_eq!(c.verdict(ms(5), None), Verdict::Unknown);
    }
}
