//! corun beside tokio: a coroutine awaits work spawned on a tokio runtime.
//!
//!     cargo run --release --example tokio_interop
//!
//! A library that needs tokio's reactor (its timers, its sockets) runs on a tokio
//! runtime; a corun coroutine hands it the future with
//! `tokio::runtime::Handle::spawn` and waits for the `JoinHandle` with
//! `corun::await_future`, which parks the coroutine (not its worker) until tokio's
//! waker fires.
//!
//! With corun's cargo feature `tokio`, `corun::await_future` runs such futures
//! directly, on a tokio runtime corun starts for you (`docs/services.md`,
//! `examples/redis_service.rs`); this example shows the way without the feature.

use std::time::{Duration, Instant};

fn main() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let tokio = tokio_rt.handle().clone();
    let t0 = Instant::now();
    // 100 coroutines, each waiting on a tokio timer: they overlap, so the whole run
    // takes about one timer's length, and no corun worker is blocked meanwhile.
    let hs: Vec<_> = (0..100u64)
        .map(|i| {
            let tokio = tokio.clone();
            corun::go!(move || {
                let job = tokio.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    i * 2
                });
                corun::await_future(job).expect("the tokio task")
            })
        })
        .collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..100).map(|i| i * 2).sum::<u64>());
    println!(
        "100 coroutines awaited 100 tokio timers of 50 ms in {:?} (sum {sum})",
        t0.elapsed()
    );
}
