//! Stress and soak tests (issue 6).
//!
//! `cargo test --release` runs them with bounded sizes (rounds of the mix for about
//! 4 s and the TCP soak for 4 s, side by side); `CORUN_STRESS=long cargo test --release --test stress` soaks for ten
//! minutes (CI does not). Knobs, all optional:
//!
//! - `CORUN_STRESS_SEED=<n>`: replay a run (every run prints its seed; a failure
//!   names it). The plan of every task derives from it; the interleaving does not.
//! - `CORUN_STRESS_TASKS=<n>`: tasks per round of the mix (100,000 by default).
//! - `CORUN_STRESS_SECS=<n>`: how long the mix's rounds and the TCP soak run.
//! - `CORUN_STRESS_WATCHDOG_SECS=<n>`: the hang bound (120 s per round by default).
//!
//! A hang (a lost wake-up) is caught by a watchdog thread that prints the runtime's
//! counters and the test's progress, then aborts the process.

mod common;
mod mix;
#[path = "../support/mod.rs"]
mod support;
mod tcp;

use common::{duration, env_u64, long, mix64, say};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

fn mix_config(seed: u64) -> mix::Config {
    let bound = if long() { 300 } else { 120 };
    mix::Config {
        seed,
        tasks: env_u64("CORUN_STRESS_TASKS").unwrap_or(100_000) as usize,
        // One to four workers on whatever cores there are.
        workers: 1 + (mix64(seed) % 4) as usize,
        co_spawners: 4,
        thread_spawners: 2,
        batch: 256,
        watchdog: Duration::from_secs(env_u64("CORUN_STRESS_WATCHDOG_SECS").unwrap_or(bound)),
        inject: std::env::var("CORUN_STRESS_INJECT").ok(),
    }
}

/// The randomized mix: one round of 100,000 tasks, or rounds with fresh seeds for
/// ten minutes under `CORUN_STRESS=long`.
#[test]
fn mix() {
    let seed = common::seed();
    if support::child_env().is_some() {
        mix::run(&mix_config(seed));
        return;
    }
    // Bounded: rounds (each with its own seed and worker count) for about 4 s, at
    // least one, however slow the machine.
    let soak = duration(Duration::from_secs(4), Duration::from_secs(600));
    let t0 = Instant::now();
    let mut round = 0u64;
    loop {
        mix::run(&mix_config(seed.wrapping_add(round)));
        round += 1;
        if t0.elapsed() >= soak {
            break;
        }
    }
    say(&format!(
        "stress mix: {round} rounds in {:.0} s, seeds {seed}..{}",
        t0.elapsed().as_secs_f64(),
        seed.wrapping_add(round)
    ));
}

/// Clients that connect, talk, half-close, reset and time out against the echo
/// example in a child process.
#[test]
fn tcp_soak() {
    if support::child_env().is_some() {
        return;
    }
    let secs = duration(Duration::from_secs(4), Duration::from_secs(600));
    tcp::run(common::seed(), secs);
}

// ---- the suite can fail: a deliberate lost wake-up and a deliberate lost token ----

/// Runs the mix (3,000 tasks) in a child with a deliberate bug; `watchdog` bounds
/// it (and the child is killed 120 s after that).
fn run_mix_child(inject: &str, watchdog: u64) -> std::process::Output {
    support::ChildTest::new("mix")
        .env(support::CHILD_ENV, inject)
        .env("CORUN_STRESS_INJECT", inject)
        .env("CORUN_STRESS_TASKS", "3000")
        .env("CORUN_STRESS_WATCHDOG_SECS", watchdog.to_string())
        .env_remove("CORUN_STRESS")
        .limit(Duration::from_secs(watchdog + 120))
        .output()
}

#[test]
fn the_watchdog_catches_a_lost_wakeup() {
    if support::child_env().is_some() {
        return;
    }
    // Every batch has a task that never ends: the watchdog must fire (soon).
    let out = run_mix_child("hang", 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child should abort: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("STRESS WATCHDOG"), "{stderr}");
    assert!(stderr.contains("CORUN_STRESS_SEED="), "{stderr}");
    assert!(stderr.contains("runtime metrics"), "{stderr}");
}

#[test]
fn the_checksums_catch_a_lost_token() {
    if support::child_env().is_some() {
        return;
    }
    // The watchdog must not fire here, however slow the machine.
    let out = run_mix_child("lose", 120);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a forgotten token went unnoticed:\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.signal(), None, "{stderr}");
    assert!(
        stdout.contains("dropped 0 times") || stderr.contains("dropped 0 times"),
        "not the token check:\n{stdout}\n{stderr}"
    );
}
