use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
fn main() {
    let h = corun::spawn(|| 40 + 2);
    println!("join {:?}", h.join().unwrap());
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let t = Instant::now();
    let n = rt.block_on(|| {
        let c = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..1_000_000)
            .map(|_| {
                let c = c.clone();
                corun::spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        c.load(Ordering::Relaxed)
    });
    println!(
        "w1 {} {:?} {:.1} ns",
        n,
        t.elapsed(),
        t.elapsed().as_nanos() as f64 / 1e6
    );
    let t = Instant::now();
    rt.block_on(|| {
        let hs: Vec<_> = (0..1000)
            .map(|_| {
                corun::spawn(|| {
                    for _ in 0..1000 {
                        corun::yield_now()
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    println!("w2 {:.1} ns/yield", t.elapsed().as_nanos() as f64 / 1e6);
    let t = Instant::now();
    rt.block_on(|| {
        let hs: Vec<_> = (0..1000)
            .map(|_| corun::spawn(|| corun::sleep(Duration::from_millis(50))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    println!("sleep {:?}", t.elapsed());
    fn pfib(n: u64) -> u64 {
        if n < 20 {
            return sfib(n);
        }
        let h = corun::spawn(move || pfib(n - 1));
        let b = pfib(n - 2);
        h.join().unwrap() + b
    }
    fn sfib(n: u64) -> u64 {
        if n < 2 {
            n
        } else {
            sfib(n - 1) + sfib(n - 2)
        }
    }
    for w in [1, 2] {
        let rt = corun::Runtime::builder().workers(w).build().unwrap();
        let t = Instant::now();
        let v = rt.block_on(|| pfib(38));
        println!("fib w={} {} {:?}", w, v, t.elapsed());
    }
    println!("{:?}", rt.metrics());
    drop(rt);
    println!("dropped");
}
