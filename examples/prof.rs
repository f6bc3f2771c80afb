use std::time::Instant;
fn main() {
    let w = std::env::args().nth(1).unwrap_or_default();
    let workers: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    if w == "switch" {
        use corun::coroutine::{stack::Stack, Fiber};
        let mut f: Fiber<u32> = Fiber::new(Stack::new(64 * 1024).unwrap(), None, 1, |s, ()| loop {
            s.suspend(1)
        });
        let n = 10_000_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f.resume());
        }
        println!(
            "fiber resume+suspend: {:.2} ns",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        let mut c = corosensei::Coroutine::new(|y: &corosensei::Yielder<(), u32>, ()| loop {
            y.suspend(1)
        });
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(c.resume(()));
        }
        println!(
            "bare corosensei resume+suspend: {:.2} ns",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        return;
    }
    let rt = corun::Runtime::builder().workers(workers).build().unwrap();
    rt.block_on(|| ());
    let t = Instant::now();
    match w.as_str() {
        "w1x3" => {
            for _ in 0..3 {
                let t = Instant::now();
                rt.block_on(|| {
                    let hs: Vec<_> = (0..1_000_000u64).map(|i| corun::spawn(move || i)).collect();
                    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
                    assert_eq!(s, 499999500000);
                });
                println!("w1 round {:?}", t.elapsed());
            }
        }
        "w1" => rt.block_on(|| {
            let hs: Vec<_> = (0..1_000_000u64).map(|i| corun::spawn(move || i)).collect();
            let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(s, 499999500000);
        }),
        "w2" => rt.block_on(|| {
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
        }),
        // Go's prime sieve to the 1000th prime: a chain of rendezvous channels.
        "w9" => rt.block_on(|| {
            use corun::chan::bounded;
            let (tx, mut ch) = bounded::<u64>(0);
            corun::spawn(move || (2..).try_for_each(|i| tx.send(i)));
            let mut hops = 0u64;
            for _ in 0..1000 {
                let prime = ch.recv().unwrap();
                let (next_tx, next_rx) = bounded::<u64>(0);
                let input = std::mem::replace(&mut ch, next_rx);
                corun::spawn(move || {
                    while let Ok(v) = input.recv() {
                        if v % prime != 0 && next_tx.send(v).is_err() {
                            break;
                        }
                    }
                });
                hops += prime;
            }
            println!("sum of the first 1000 primes: {hops}");
        }),
        _ => {
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
            assert_eq!(rt.block_on(|| pfib(38)), 39088169);
        }
    }
    println!("{} {:?} {:?}", w, t.elapsed(), rt.metrics());
}
