//! How late a deadline fires while every worker computes: 64 coroutines take 1 ms
//! CPU jobs from a bounded channel, fed as fast as they take them, and the main
//! coroutine waits on `chan::after(200 ms)`. Prints each round's lateness and the
//! worst.
//!
//!     cargo run --release --example deadline [ROUNDS]      (default 5)
//!
//! With `--max-late MS` it exits with status 1 if the worst round is later than
//! that (the test suite runs it so, with a generous bound).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: usize = 64;
const JOB: Duration = Duration::from_millis(1);
const DEADLINE: Duration = Duration::from_millis(200);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 5;
    let mut max_late = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--max-late" => {
                let ms: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--max-late MS");
                max_late = Some(Duration::from_millis(ms));
            }
            n => rounds = n.parse().expect("ROUNDS is a number"),
        }
    }
    let rt = corun::Runtime::builder()
        .workers(2)
        .build()
        .expect("runtime");
    let mut worst = Duration::ZERO;
    for i in 1..=rounds {
        let late = rt.block_on(round);
        println!(
            "round {i}: the 200 ms deadline fired {:.1} ms late",
            ms(late)
        );
        worst = worst.max(late);
    }
    println!("worst of {rounds}: {:.1} ms late", ms(worst));
    if max_late.is_some_and(|m| worst > m) {
        eprintln!("later than --max-late");
        std::process::exit(1);
    }
}

/// One round: how late the deadline fired.
fn round() -> Duration {
    let (tx, rx) = corun::chan::bounded::<u64>(JOBS);
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        corun::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && tx.send(n).is_ok() {
                n += 1;
            }
        })
    };
    let workers: Vec<_> = (0..JOBS)
        .map(|_| {
            let rx = rx.clone();
            corun::spawn(move || {
                let mut sum = 0u64;
                while let Ok(job) = rx.recv() {
                    sum = sum.wrapping_add(compute(job, JOB));
                }
                sum
            })
        })
        .collect();
    drop(rx);
    let t0 = Instant::now();
    corun::chan::after(DEADLINE)
        .recv()
        .expect("the timer fires");
    let late = t0.elapsed().saturating_sub(DEADLINE);
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    for w in workers {
        std::hint::black_box(w.join().expect("worker"));
    }
    late
}

/// Spins for about `d` of CPU.
fn compute(seed: u64, d: Duration) -> u64 {
    let t0 = Instant::now();
    let mut x = seed;
    while t0.elapsed() < d {
        for _ in 0..100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    x
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
