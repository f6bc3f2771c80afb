//! What every stress test shares: the mode and the seed, a small seeded generator,
//! and the watchdog that turns a hang (a lost wake-up) into a failure with a report.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `CORUN_STRESS=long`: the soak (CI does not run it).
pub fn long() -> bool {
    std::env::var("CORUN_STRESS").as_deref() == Ok("long")
}

/// A number from the environment, if set (decimal or `0x` hex).
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// The seed: `CORUN_STRESS_SEED`, else fresh from the clock. Printed by the caller.
pub fn seed() -> u64 {
    env_u64("CORUN_STRESS_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        mix64(t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32))
    })
}

/// How long a time-bounded test runs: `CORUN_STRESS_SECS`, else `bounded` or, in
/// the long mode, `soak`.
pub fn duration(bounded: Duration, soak: Duration) -> Duration {
    match env_u64("CORUN_STRESS_SECS") {
        Some(s) => Duration::from_secs(s),
        None if long() => soak,
        None => bounded,
    }
}

/// splitmix64's finalizer: a good 64-bit hash of `x`.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A seeded generator (splitmix64): the same seed gives the same sequence.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Writes straight to the process's stderr: the test harness captures `eprintln!`,
/// and what it captured is lost when the process aborts.
pub fn say(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(msg.as_bytes());
    let _ = e.write_all(b"\n");
    let _ = e.flush();
}

/// A thread that aborts the process, after printing `report()` and the runtime's
/// counters, if it is not dropped within `bound`. Dropping it disarms it.
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(
        what: String,
        bound: Duration,
        handle: Option<corun::Handle>,
        report: impl Fn() -> String + Send + 'static,
    ) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("stress-watchdog".into())
            .spawn(move || {
                let start = Instant::now();
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(bound) {
                    fire(&what, start.elapsed(), handle.as_ref(), &report);
                }
            })
            .expect("spawning the watchdog thread");
        Watchdog {
            disarm: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fire(what: &str, after: Duration, handle: Option<&corun::Handle>, report: &dyn Fn() -> String) {
    say(&format!(
        "\n==== STRESS WATCHDOG: {what} did not finish within {:.0} s: a lost wake-up or a \
         deadlock (or a machine far slower than expected). Runtime state follows; the \
         process aborts. ====",
        after.as_secs_f64()
    ));
    say(&report());
    if let Some(h) = handle {
        // Two snapshots a second apart tell a stall (nothing moves) from a livelock.
        say(&metrics_text("runtime metrics", &h.metrics()));
        std::thread::sleep(Duration::from_secs(1));
        say(&metrics_text("runtime metrics 1 s later", &h.metrics()));
        say(&h.dump());
    }
    say(&format!("==== STRESS WATCHDOG: aborting ({what}) ===="));
    std::process::abort();
}

fn metrics_text(title: &str, m: &corun::Metrics) -> String {
    let mut s = format!(
        "{title}: {} live, {} spawned from outside, {} stacks mapped ({} pooled)",
        m.live, m.spawned_outside, m.stacks_mapped, m.stacks_pooled
    );
    for (i, w) in m.workers.iter().enumerate() {
        s += &format!("\n  worker {i}: {w:?}");
    }
    s
}
