//! The greenlet ping-pong replayed on corun: two coroutines bat a counter back and
//! forth over two channels, and the program prints round trips per second.
//!
//!     cargo run --release --example pingpong [ROUND_TRIPS] [WORKERS] [thread]
//!
//! With `thread`, the pinger is the main thread instead of a coroutine (a thread and
//! a coroutine sharing channels).
//!
//! greenlet's version switches explicitly (`gr2.switch()`); here each side blocks on
//! its channel and the scheduler switches, usually straight to the other coroutine
//! (a wake on the same worker goes to `runnext`).

use corun::chan;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let from_thread = args.next().as_deref() == Some("thread");
    let rt = corun::Runtime::builder()
        .workers(workers)
        .build()
        .expect("start the runtime");
    let handle = rt.handle().clone();
    let play = move || {
        let (ping_tx, ping_rx) = chan::unbounded::<u64>();
        let (pong_tx, pong_rx) = chan::unbounded::<u64>();
        let t = Instant::now();
        let ponger = handle.spawn(move || {
            for v in &ping_rx {
                if pong_tx.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let ping = move || {
            let mut v = 0;
            for _ in 0..n {
                ping_tx.send(v).unwrap();
                v = pong_rx.recv().unwrap();
            }
            drop(ping_tx); // closes the channel: ends the ponger's loop
            v
        };
        let last = match from_thread {
            true => ping(),
            false => corun::go!(ping).join().unwrap(),
        };
        ponger.join().unwrap();
        (t.elapsed(), last)
    };
    let (elapsed, last) = match from_thread {
        true => play(),
        false => rt.block_on(play),
    };
    assert_eq!(last, n);
    let per_s = n as f64 / elapsed.as_secs_f64();
    let who = if from_thread {
        "thread <-> coroutine"
    } else {
        "coroutines"
    };
    println!(
        "{who}: {n} round trips on {workers} worker(s) in {elapsed:.2?}: {per_s:.0} round trips/s, \
         {:.0} ns per round trip",
        elapsed.as_nanos() as f64 / n as f64
    );
    let m = rt.metrics();
    for (i, w) in m.workers.iter().enumerate() {
        println!(
            "  worker {i}: {} switches, {} sleeps, {} stolen",
            w.switches, w.sleeps, w.stolen
        );
    }
}
