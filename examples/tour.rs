//! A tour of corun: spawning, joining, yielding, scoped coroutines, sleeping, and a
//! million coroutines, printing what happens and how long it took.
//!
//!     cargo run --release --example tour

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let rt = corun::Runtime::new().expect("start the runtime");
    println!("corun runtime with {} workers", rt.handle().workers());

    // 1. Spawn and join: a coroutine is straight-line code returning a value.
    let t = Instant::now();
    let answer = rt.block_on(|| corun::go!(|| 6 * 7).join().unwrap());
    println!(
        "1. spawned a coroutine, joined it: {answer} ({:?})",
        t.elapsed()
    );

    // 2. A panic stays inside its coroutine and reaches join().
    let err = rt.block_on(|| {
        corun::Builder::new()
            .name("fragile")
            .spawn(|| panic!("oops"))
            .unwrap()
            .join()
    });
    println!(
        "2. a panicking coroutine: join() = Err({:?})",
        err.unwrap_err().downcast_ref::<&str>()
    );

    // 3. Yielding: two coroutines on one worker take turns.
    let one = corun::Runtime::builder().workers(1).build().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    one.block_on({
        let log = log.clone();
        move || {
            let hs: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|tag| {
                    let log = log.clone();
                    corun::spawn(move || {
                        for _ in 0..4 {
                            log.lock().unwrap().push_str(tag);
                            corun::yield_now();
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        }
    });
    println!(
        "3. two coroutines yielding on one worker interleave: {}",
        log.lock().unwrap()
    );

    // 4. Scoped coroutines borrow from the caller's stack.
    let mut squares = vec![0u64; 8];
    corun::scope(|s| {
        for (i, slot) in squares.iter_mut().enumerate() {
            s.spawn(move || *slot = (i * i) as u64);
        }
    });
    println!("4. scoped coroutines filled a borrowed Vec: {squares:?}");

    // 5. Sleeping parks the coroutine, not the worker: 10,000 sleepers take 100 ms.
    let t = Instant::now();
    rt.block_on(|| {
        let hs: Vec<_> = (0..10_000)
            .map(|_| corun::spawn(|| corun::sleep(Duration::from_millis(100))))
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    println!(
        "5. 10,000 coroutines slept 100 ms each, together: {:?}",
        t.elapsed()
    );

    // 6. A million coroutines, spawned and joined from inside a coroutine.
    let t = Instant::now();
    let sum = rt.block_on(|| {
        let total = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..1_000_000u64)
            .map(|i| {
                let total = total.clone();
                corun::spawn(move || {
                    total.fetch_add(i, Ordering::Relaxed);
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        total.load(Ordering::Relaxed)
    });
    let e = t.elapsed();
    println!(
        "6. 1,000,000 coroutines spawned and joined in {e:?} ({:.0} ns each), sum = {sum}",
        e.as_nanos() as f64 / 1e6
    );
    let m = rt.metrics();
    println!(
        "   metrics: {} live, {} stacks mapped ({} pooled), per worker started {:?}, stolen {:?}",
        m.live,
        m.stacks_mapped,
        m.stacks_pooled,
        m.workers.iter().map(|w| w.started).collect::<Vec<_>>(),
        m.workers.iter().map(|w| w.stolen).collect::<Vec<_>>()
    );
}
