//! corun against its peers: may, tokio and (when built) Go.
//!
//! `cargo bench --bench peers [-- w1 w4 ...]` runs each workload on each runtime in a
//! process of its own (may cannot shut down and its worker count is process-wide):
//! this binary re-executes itself with `PEERS_CHILD=<runtime>:<workload>[:<arg>]`,
//! the child runs one workload and prints one `RESULT runtime=.. workload=.. k=v ..`
//! line, and the parent prints a markdown table of the medians.
//!
//! Environment: `PEERS_REPEAT` (runs per cell, default 3), `PEERS_W5_N` (sleeping
//! tasks in w5, default 10000), `PEERS_TIMEOUT` (seconds before a child is
//! killed, default 120), `PEERS_GO` (Go anchors binary, default
//! `/tmp/corun-anchors/go-anchors`; used when it exists).
//!
//! Workloads (2 workers each, body inside a coroutine/task started after a warm-up
//! spawn+join):
//! - w1: spawn 1,000,000 trivial coroutines from a coroutine, join all (ns/spawn)
//! - w2: 1000 coroutines x 1000 yields (ns/yield)
//! - w3: channel ping-pong, 1,000,000 round trips (ns/round trip); tokio's channels
//!   are bounded(1). `w3u` (run by the `w3` filter too): the same with tokio's
//!   unbounded channels (corun and may use unbounded channels in both), its ratio
//!   against tokio alone
//! - w3t: 200,000 round trips between the plain harness thread and one coroutine over
//!   two unbounded `corun::chan` channels (ns/round trip), against crossbeam-channel
//!   between two plain threads (the `xbeam` pseudo-runtime, a column of its own)
//! - w4: skynet with join handles, 1,000,000 leaves (ms); `w4chan`: with channels
//! - w5: N coroutines sleeping 1 s (bytes of peak RSS per task, maps at peak)
//! - w6: TCP echo, 100 clients x 10,000 round trips (round trips/s)
//! - w7: 100 coroutines x 10,000 mutex increments (ms)
//! - w8: parallel fib(38), a coroutine per call above 20, on 1 and 2 workers (ms)
//! - w9: Go's concurrent prime sieve to the 3000th prime: a chain of filter coroutines
//!   over rendezvous channels (ms; corun and Go only)
//! - w10: pipelines: a generator, 8 workers over one rendezvous channel, fan-in over
//!   another, 1,000,000 items (ms; corun and Go only)
//! - w11: 5,000 TCP connections to an in-process echo server, all open at once, 20
//!   round trips of 64 bytes each (round trips/s, p99 latency, peak RSS; corun and Go
//!   only; the 10,000-connection figure, with the client in a process of its own, is
//!   `cargo bench --bench conns`)
//! - w12: thread ring: 503 coroutines in a ring of unbounded channels pass a token
//!   1,000,000 hops (ns/hop; corun, may and tokio)

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "PEERS_CHILD";
/// How long a child may run before it is killed (`PEERS_TIMEOUT` seconds overrides).
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

fn child_timeout() -> Duration {
    std::env::var("PEERS_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(CHILD_TIMEOUT)
}
const DEFAULT_GO: &str = "/tmp/corun-anchors/go-anchors";

const W1_N: u64 = 1_000_000;
const W2_TASKS: u64 = 1000;
const W2_YIELDS: u64 = 1000;
const W3_N: u64 = 1_000_000;
const W3T_N: u64 = 200_000;
const SKYNET_LEAVES: u64 = 1_000_000;
/// w11: connections held at once in one process (two descriptors each), and round trips.
const W11_DEFAULT_CONNS: u64 = 5000;
const W11_ROUNDS: u64 = 20;
/// w12: coroutines in the ring, and hops of the token.
const RING: u64 = 503;
const RING_HOPS: u64 = 1_000_000;

/// One hop of w12's token at node `id`: passes `n - 1` on, or at 0 reports `id`
/// and sends the stop mark round. False when the node should end.
fn ring_step(id: u64, n: u64, send: impl Fn(u64) -> bool, done: impl Fn(u64) -> bool) -> bool {
    match n {
        u64::MAX => {
            send(u64::MAX);
            false
        }
        0 => {
            done(id);
            send(u64::MAX);
            false
        }
        n => send(n - 1),
    }
}

/// w12's figures from its time and the id of the node the token ended at.
fn hop_outcome(t: Duration, id: u64) -> Outcome {
    let id = check("w12", id, RING_HOPS % RING);
    Outcome::default()
        .with("ns_per_hop", ns_per(t, RING_HOPS))
        .with("internal_ms", ms(t))
        .with("checksum", id)
}
const SKYNET_DIV: u64 = 10;
const SKYNET_SUM: u64 = 499_999_500_000;
const W5_DEFAULT_N: u64 = 10_000;
const W5_SLEEP: Duration = Duration::from_secs(1);
/// When w5 samples the map count: all tasks are asleep by then.
const W5_SAMPLE_AFTER: Duration = Duration::from_millis(500);
const W6_CLIENTS: u64 = 100;
const W6_ROUNDS: u64 = 10_000;
const W7_TASKS: u64 = 100;
const W7_INCS: u64 = 10_000;
const FIB_N: u64 = 38;
const FIB_CUTOFF: u64 = 20;
const FIB_38: u64 = 39_088_169;

// ---------------------------------------------------------------------------
// What the children measure, shared by every runtime.
// ---------------------------------------------------------------------------

/// Key/value figures of one run, printed as the child's `RESULT` line.
#[derive(Default)]
struct Outcome(Vec<(&'static str, String)>);

impl Outcome {
    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.0.push((key, value.to_string()));
        self
    }
}

/// Panics (so the child fails) when a checksum is off.
fn check(what: &str, got: u64, want: u64) -> u64 {
    assert_eq!(
        got, want,
        "{what}: checksum mismatch: got {got}, want {want}"
    );
    got
}

fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn vm_rss_kb() -> u64 {
    status_kb("VmRSS:")
}

fn vm_hwm_kb() -> u64 {
    status_kb("VmHWM:")
}

fn map_count() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count() as u64)
        .unwrap_or(0)
}

fn ns_per(t: Duration, n: u64) -> String {
    format!("{:.1}", t.as_nanos() as f64 / n as f64)
}

fn ms(t: Duration) -> String {
    format!("{:.3}", t.as_secs_f64() * 1e3)
}

fn sfib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        sfib(n - 1) + sfib(n - 2)
    }
}

/// w5's figures from the RSS before spawning and the map count sampled at peak.
fn w5_outcome(n: u64, rss_before_kb: u64, maps: u64, t: Duration) -> Outcome {
    let grown = vm_hwm_kb().saturating_sub(rss_before_kb);
    Outcome::default()
        .with(
            "bytes_per_task",
            format!("{:.0}", grown as f64 * 1024.0 / n as f64),
        )
        .with("maps", maps)
        .with("n", n)
        .with("internal_ms", ms(t))
}

// ---------------------------------------------------------------------------
// corun
// ---------------------------------------------------------------------------

mod corun_rt {
    use super::*;

    /// Why a workload has no corun version yet (`None`: it has one).
    pub fn missing(_workload: &str) -> Option<&'static str> {
        None
    }

    pub fn run(workload: &str, arg: Option<u64>) -> Outcome {
        let workers = match workload {
            "w8" | "w9" => arg.unwrap_or(2),
            _ => 2,
        };
        let rt = corun::Runtime::builder()
            .workers(workers as usize)
            .build()
            .expect("corun runtime");
        rt.block_on(|| ()); // warm-up: one trivial spawn + join
        match workload {
            "w1" => rt.block_on(w1),
            "w2" => rt.block_on(w2),
            "w3" | "w3u" => rt.block_on(w3),
            "w3t" => w3t(&rt),
            "w4" => w4(&rt),
            "w4chan" => rt.block_on(w4chan),
            "w5" => rt.block_on(move || w5(arg.unwrap_or(W5_DEFAULT_N))),
            "w6" => rt.block_on(w6),
            "w7" => rt.block_on(w7),
            "w8" => rt.block_on(move || w8(workers)),
            "w9" => rt.block_on(w9),
            "w10" => rt.block_on(w10),
            "w11" => rt.block_on(move || w11(arg.unwrap_or(W11_DEFAULT_CONNS))),
            "w12" => rt.block_on(w12),
            other => panic!("corun has no workload {other}"),
        }
    }

    fn w9() -> Outcome {
        use corun::chan::{bounded, Receiver};
        const COUNT: usize = 3000;
        let t0 = Instant::now();
        let (tx, mut ch) = bounded::<u64>(0);
        corun::spawn(move || {
            for i in 2.. {
                if tx.send(i).is_err() {
                    break;
                }
            }
        });
        let mut last = 0;
        for _ in 0..COUNT {
            let prime = ch.recv().expect("sieve");
            last = prime;
            let (next_tx, next_rx) = bounded::<u64>(0);
            let input: Receiver<u64> = std::mem::replace(&mut ch, next_rx);
            corun::spawn(move || {
                while let Ok(v) = input.recv() {
                    if v % prime != 0 && next_tx.send(v).is_err() {
                        break;
                    }
                }
            });
        }
        let t = t0.elapsed();
        // Dropping the last receiver ends the chain, filter by filter.
        drop(ch);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", check("w9", last, 27449))
    }

    fn w10() -> Outcome {
        use corun::chan::bounded;
        const ITEMS: u64 = 1_000_000;
        let t0 = Instant::now();
        let (src_tx, src) = bounded::<u64>(0);
        corun::spawn(move || {
            for i in 1..=ITEMS {
                src_tx.send(i).expect("w10 generator");
            }
        });
        let (out_tx, out) = bounded::<u64>(0);
        for _ in 0..8 {
            let (src, out_tx) = (src.clone(), out_tx.clone());
            corun::spawn(move || {
                while let Ok(v) = src.recv() {
                    let x = v % 1000;
                    out_tx.send(x * x).expect("w10 fan-in");
                }
            });
        }
        drop((src, out_tx));
        let mut sum = 0u64;
        while let Ok(v) = out.recv() {
            sum += v;
        }
        let t = t0.elapsed();
        let want: u64 = (1..=ITEMS).map(|v| (v % 1000) * (v % 1000)).sum();
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", check("w10", sum, want))
    }

    fn w12() -> Outcome {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING).map(|_| corun::chan::unbounded()).unzip();
        let (done_tx, done) = corun::chan::unbounded::<u64>();
        let t0 = Instant::now();
        for (id, rx) in rxs.into_iter().enumerate() {
            let next = txs[(id + 1) % RING as usize].clone();
            let done_tx = done_tx.clone();
            corun::spawn(move || {
                while let Ok(n) = rx.recv() {
                    let send = |n| next.send(n).is_ok();
                    if !ring_step(id as u64, n, send, |id| done_tx.send(id).is_ok()) {
                        return;
                    }
                }
            });
        }
        txs[0].send(RING_HOPS).expect("ring start");
        drop(txs);
        let id = done.recv().expect("ring end");
        hop_outcome(t0.elapsed(), id)
    }

    fn w11(conns: u64) -> Outcome {
        use corun::net::{TcpListener, TcpStream};
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        corun::spawn(move || {
            while let Ok((mut s, _)) = listener.accept() {
                corun::spawn(move || {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() {
                        if s.write_all(&buf).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let streams: Vec<TcpStream> = (0..conns)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let t0 = Instant::now();
        let clients: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                corun::spawn(move || {
                    let (mut out, mut inb) = ([0u8; 64], [0u8; 64]);
                    let mut lat = Vec::with_capacity(W11_ROUNDS as usize);
                    for r in 0..W11_ROUNDS {
                        out[0] = r as u8;
                        let t = Instant::now();
                        s.write_all(&out).expect("write");
                        s.read_exact(&mut inb).expect("read");
                        assert_eq!(inb[0], r as u8, "w11 echo");
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut all: Vec<Duration> = clients
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect();
        let t = t0.elapsed();
        all.sort();
        let n = check("w11", all.len() as u64, conns * W11_ROUNDS);
        Outcome::default()
            .with("conns", conns)
            .with(
                "roundtrips_per_s",
                format!("{:.0}", n as f64 / t.as_secs_f64()),
            )
            .with("p99_us", all[all.len() * 99 / 100].as_micros())
            .with("internal_ms", ms(t))
            .with("checksum", n)
    }

    fn w1() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut hs = Vec::with_capacity(W1_N as usize);
        for _ in 0..W1_N {
            let c = ctr.clone();
            hs.push(corun::spawn(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in hs {
            h.join().expect("w1 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w1", ctr.load(Ordering::SeqCst), W1_N);
        Outcome::default()
            .with("ns_per_spawn", ns_per(t, W1_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w2() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W2_TASKS)
            .map(|_| {
                let c = ctr.clone();
                corun::spawn(move || {
                    for _ in 0..W2_YIELDS {
                        corun::yield_now();
                    }
                    c.fetch_add(W2_YIELDS, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().expect("w2 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w2", ctr.load(Ordering::SeqCst), W2_TASKS * W2_YIELDS);
        Outcome::default()
            .with("ns_per_yield", ns_per(t, W2_TASKS * W2_YIELDS))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    /// Ping-pong over two unbounded `corun::chan` channels.
    fn w3() -> Outcome {
        let (tx_a, rx_a) = corun::chan::unbounded::<u64>();
        let (tx_b, rx_b) = corun::chan::unbounded::<u64>();
        let t0 = Instant::now();
        let ponger = corun::spawn(move || {
            for _ in 0..W3_N {
                let v = rx_a.recv().expect("ping");
                tx_b.send(v + 1).expect("pong");
            }
        });
        let pinger = corun::spawn(move || {
            let mut v = 0u64;
            for _ in 0..W3_N {
                tx_a.send(v).expect("ping");
                v = rx_b.recv().expect("pong");
            }
            v
        });
        let v = pinger.join().expect("pinger");
        ponger.join().expect("ponger");
        let t = t0.elapsed();
        let v = check("w3", v, W3_N);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    /// Round trips between this plain thread and a coroutine over two unbounded
    /// `corun::chan` channels; timed after one untimed round trip.
    fn w3t(rt: &corun::Runtime) -> Outcome {
        let (tx_a, rx_a) = corun::chan::unbounded::<u64>();
        let (tx_b, rx_b) = corun::chan::unbounded::<u64>();
        let ponger = rt.spawn(move || {
            for _ in 0..=W3T_N {
                let v = rx_a.recv().expect("ping");
                tx_b.send(v + 1).expect("pong");
            }
        });
        tx_a.send(0).expect("ping");
        let mut v = rx_b.recv().expect("pong");
        let t0 = Instant::now();
        for _ in 0..W3T_N {
            tx_a.send(v).expect("ping");
            v = rx_b.recv().expect("pong");
        }
        let t = t0.elapsed();
        ponger.join().expect("ponger");
        let v = check("w3t", v, W3T_N + 1);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3T_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet_chan(tx: corun::chan::Sender<u64>, num: u64, size: u64) {
        if size == 1 {
            tx.send(num).expect("skynet send");
            return;
        }
        let step = size / SKYNET_DIV;
        let (rtx, rrx) = corun::chan::unbounded::<u64>();
        for i in 0..SKYNET_DIV {
            let t = rtx.clone();
            corun::spawn(move || skynet_chan(t, num + i * step, step));
        }
        drop(rtx);
        let sum: u64 = (0..SKYNET_DIV)
            .map(|_| rrx.recv().expect("skynet recv"))
            .sum();
        tx.send(sum).expect("skynet send");
    }

    /// Skynet over unbounded channels (the tokio anchor's shape).
    fn w4chan() -> Outcome {
        let t0 = Instant::now();
        let (tx, rx) = corun::chan::unbounded::<u64>();
        corun::spawn(move || skynet_chan(tx, 0, SKYNET_LEAVES));
        let v = rx.recv().expect("skynet root");
        let t = t0.elapsed();
        let v = check("w4chan", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet(num: u64, size: u64) -> u64 {
        if size == 1 {
            return num;
        }
        let step = size / SKYNET_DIV;
        let hs: Vec<_> = (0..SKYNET_DIV)
            .map(|i| corun::spawn(move || skynet(num + i * step, step)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("skynet child"))
            .sum()
    }

    /// Skynet with join handles, with a plain thread sampling the live stacks.
    fn w4(rt: &corun::Runtime) -> Outcome {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            let handle = rt.handle().clone();
            std::thread::spawn(move || {
                let mut peak = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let m = handle.metrics();
                    peak = peak.max(m.stacks_mapped.saturating_sub(m.stacks_pooled));
                    std::thread::sleep(Duration::from_millis(1));
                }
                peak
            })
        };
        let (t, v) = rt.block_on(|| {
            let t0 = Instant::now();
            let v = corun::spawn(|| skynet(0, SKYNET_LEAVES))
                .join()
                .expect("skynet root");
            (t0.elapsed(), v)
        });
        stop.store(true, Ordering::Relaxed);
        let peak = sampler.join().expect("sampler thread");
        let v = check("w4", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("peak_stacks", peak)
            .with("checksum", v)
    }

    fn w5(n: u64) -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let before = vm_rss_kb();
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = ctr.clone();
                corun::spawn(move || {
                    corun::sleep(W5_SLEEP);
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        corun::sleep(W5_SAMPLE_AFTER.saturating_sub(t0.elapsed()));
        let maps = map_count();
        for h in hs {
            h.join().expect("w5 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w5", ctr.load(Ordering::SeqCst), n);
        w5_outcome(n, before, maps, t).with("checksum", v)
    }

    fn w6() -> Outcome {
        use corun::net::{TcpListener, TcpStream};
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let t0 = Instant::now();
        let server = corun::spawn(move || {
            let mut hs = Vec::new();
            for _ in 0..W6_CLIENTS {
                let (mut s, _) = listener.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                hs.push(corun::spawn(move || {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() {
                        s.write_all(&buf).expect("echo");
                    }
                }));
            }
            for h in hs {
                h.join().expect("echo coroutine");
            }
        });
        let ok = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..W6_CLIENTS)
            .map(|id| {
                let ok = ok.clone();
                corun::spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let mut out = [0u8; 64];
                    let mut inb = [0u8; 64];
                    let mut good = 0u64;
                    for i in 0..W6_ROUNDS {
                        out[..8].copy_from_slice(&id.to_le_bytes());
                        out[8..16].copy_from_slice(&i.to_le_bytes());
                        s.write_all(&out).expect("write");
                        s.read_exact(&mut inb).expect("read");
                        good += u64::from(inb == out);
                    }
                    ok.fetch_add(good, Ordering::Relaxed);
                })
            })
            .collect();
        for h in clients {
            h.join().expect("client");
        }
        let t = t0.elapsed();
        server.join().expect("server");
        let v = check("w6", ok.load(Ordering::SeqCst), W6_CLIENTS * W6_ROUNDS);
        Outcome::default()
            .with(
                "roundtrips_per_s",
                format!("{:.0}", v as f64 / t.as_secs_f64()),
            )
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w7() -> Outcome {
        let m = Arc::new(corun::sync::Mutex::new(0u64));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W7_TASKS)
            .map(|_| {
                let m = m.clone();
                corun::spawn(move || {
                    for _ in 0..W7_INCS {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("w7 coroutine");
        }
        let t = t0.elapsed();
        let v = *m.lock();
        let v = check("w7", v, W7_TASKS * W7_INCS);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn pfib(n: u64) -> u64 {
        if n < FIB_CUTOFF {
            return sfib(n);
        }
        let h = corun::spawn(move || pfib(n - 1));
        let b = pfib(n - 2);
        h.join().expect("pfib child") + b
    }

    fn w8(workers: u64) -> Outcome {
        let t0 = Instant::now();
        let v = pfib(FIB_N);
        let t = t0.elapsed();
        let v = check("w8", v, FIB_38);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("workers", workers)
            .with("checksum", v)
    }
}

// ---------------------------------------------------------------------------
// may (port of the may anchors)
// ---------------------------------------------------------------------------

mod may_rt {
    use super::*;
    use may::coroutine;
    use std::io::Write;

    pub fn run(workload: &str, arg: Option<u64>) -> Outcome {
        let workers = if workload == "w8" {
            arg.unwrap_or(2)
        } else {
            2
        };
        may::config().set_workers(workers as usize);
        may::go!(|| ()).join().expect("may warm-up"); // one trivial spawn + join
        let w = workload.to_owned();
        let driver = may::go!(move || match w.as_str() {
            "w1" => w1(),
            "w2" => w2(),
            "w3" | "w3u" => w3(),
            "w4" => w4(),
            "w4chan" => w4chan(),
            "w5" => w5(arg.unwrap_or(W5_DEFAULT_N)),
            "w6" => w6(),
            "w7" => w7(),
            "w8" => w8(workers),
            "w12" => w12(),
            other => panic!("may has no workload {other}"),
        });
        match driver.join() {
            Ok(o) => o,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    fn w1() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut hs = Vec::with_capacity(W1_N as usize);
        for _ in 0..W1_N {
            let c = ctr.clone();
            hs.push(may::go!(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in hs {
            h.join().expect("w1 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w1", ctr.load(Ordering::SeqCst), W1_N);
        Outcome::default()
            .with("ns_per_spawn", ns_per(t, W1_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w2() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W2_TASKS)
            .map(|_| {
                let c = ctr.clone();
                may::go!(move || {
                    for _ in 0..W2_YIELDS {
                        coroutine::yield_now();
                    }
                    c.fetch_add(W2_YIELDS, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().expect("w2 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w2", ctr.load(Ordering::SeqCst), W2_TASKS * W2_YIELDS);
        Outcome::default()
            .with("ns_per_yield", ns_per(t, W2_TASKS * W2_YIELDS))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w12() -> Outcome {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING).map(|_| may::sync::mpsc::channel()).unzip();
        let (done_tx, done) = may::sync::mpsc::channel::<u64>();
        let t0 = Instant::now();
        for (id, rx) in rxs.into_iter().enumerate() {
            let next = txs[(id + 1) % RING as usize].clone();
            let done_tx = done_tx.clone();
            may::go!(move || {
                while let Ok(n) = rx.recv() {
                    let send = |n| next.send(n).is_ok();
                    if !ring_step(id as u64, n, send, |id| done_tx.send(id).is_ok()) {
                        return;
                    }
                }
            });
        }
        txs[0].send(RING_HOPS).expect("ring start");
        drop(txs);
        let id = done.recv().expect("ring end");
        hop_outcome(t0.elapsed(), id)
    }

    fn w3() -> Outcome {
        let (tx_a, rx_a) = may::sync::mpsc::channel::<u64>();
        let (tx_b, rx_b) = may::sync::mpsc::channel::<u64>();
        let t0 = Instant::now();
        let ponger = may::go!(move || {
            for _ in 0..W3_N {
                let v = rx_a.recv().expect("ping");
                tx_b.send(v + 1).expect("pong");
            }
        });
        let pinger = may::go!(move || {
            let mut v = 0u64;
            for _ in 0..W3_N {
                tx_a.send(v).expect("ping");
                v = rx_b.recv().expect("pong");
            }
            v
        });
        let v = pinger.join().expect("pinger");
        ponger.join().expect("ponger");
        let t = t0.elapsed();
        let v = check("w3", v, W3_N);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet(num: u64, size: u64) -> u64 {
        if size == 1 {
            return num;
        }
        let step = size / SKYNET_DIV;
        let hs: Vec<_> = (0..SKYNET_DIV)
            .map(|i| may::go!(move || skynet(num + i * step, step)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("skynet child"))
            .sum()
    }

    fn w4() -> Outcome {
        let t0 = Instant::now();
        let v = may::go!(|| skynet(0, SKYNET_LEAVES))
            .join()
            .expect("skynet root");
        let t = t0.elapsed();
        let v = check("w4", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet_chan(tx: may::sync::mpsc::Sender<u64>, num: u64, size: u64) {
        if size == 1 {
            tx.send(num).expect("skynet send");
            return;
        }
        let step = size / SKYNET_DIV;
        let (rtx, rrx) = may::sync::mpsc::channel::<u64>();
        for i in 0..SKYNET_DIV {
            let t = rtx.clone();
            may::go!(move || skynet_chan(t, num + i * step, step));
        }
        drop(rtx);
        let sum: u64 = (0..SKYNET_DIV)
            .map(|_| rrx.recv().expect("skynet recv"))
            .sum();
        tx.send(sum).expect("skynet send");
    }

    fn w4chan() -> Outcome {
        let t0 = Instant::now();
        let (tx, rx) = may::sync::mpsc::channel::<u64>();
        may::go!(move || skynet_chan(tx, 0, SKYNET_LEAVES));
        let v = rx.recv().expect("skynet root");
        let t = t0.elapsed();
        let v = check("w4chan", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w5(n: u64) -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let before = vm_rss_kb();
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = ctr.clone();
                may::go!(move || {
                    coroutine::sleep(W5_SLEEP);
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        coroutine::sleep(W5_SAMPLE_AFTER.saturating_sub(t0.elapsed()));
        let maps = map_count();
        for h in hs {
            h.join().expect("w5 coroutine");
        }
        let t = t0.elapsed();
        let v = check("w5", ctr.load(Ordering::SeqCst), n);
        w5_outcome(n, before, maps, t).with("checksum", v)
    }

    fn w6() -> Outcome {
        let listener = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let t0 = Instant::now();
        let server = may::go!(move || {
            let mut hs = Vec::new();
            for _ in 0..W6_CLIENTS {
                let (mut s, _) = listener.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                hs.push(may::go!(move || {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() {
                        s.write_all(&buf).expect("echo");
                    }
                }));
            }
            for h in hs {
                h.join().expect("echo coroutine");
            }
        });
        let ok = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..W6_CLIENTS)
            .map(|id| {
                let ok = ok.clone();
                may::go!(move || {
                    let mut s = may::net::TcpStream::connect(addr).expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let mut out = [0u8; 64];
                    let mut inb = [0u8; 64];
                    let mut good = 0u64;
                    for i in 0..W6_ROUNDS {
                        out[..8].copy_from_slice(&id.to_le_bytes());
                        out[8..16].copy_from_slice(&i.to_le_bytes());
                        s.write_all(&out).expect("write");
                        s.read_exact(&mut inb).expect("read");
                        good += u64::from(inb == out);
                    }
                    ok.fetch_add(good, Ordering::Relaxed);
                })
            })
            .collect();
        for h in clients {
            h.join().expect("client");
        }
        let t = t0.elapsed();
        server.join().expect("server");
        let v = check("w6", ok.load(Ordering::SeqCst), W6_CLIENTS * W6_ROUNDS);
        Outcome::default()
            .with(
                "roundtrips_per_s",
                format!("{:.0}", v as f64 / t.as_secs_f64()),
            )
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn w7() -> Outcome {
        let m = Arc::new(may::sync::Mutex::new(0u64));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W7_TASKS)
            .map(|_| {
                let m = m.clone();
                may::go!(move || {
                    for _ in 0..W7_INCS {
                        *m.lock().expect("lock") += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("w7 coroutine");
        }
        let t = t0.elapsed();
        let v = *m.lock().expect("lock");
        let v = check("w7", v, W7_TASKS * W7_INCS);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn pfib(n: u64) -> u64 {
        if n < FIB_CUTOFF {
            return sfib(n);
        }
        let h = may::go!(move || pfib(n - 1));
        let b = pfib(n - 2);
        h.join().expect("pfib child") + b
    }

    fn w8(workers: u64) -> Outcome {
        let t0 = Instant::now();
        let v = pfib(FIB_N);
        let t = t0.elapsed();
        let v = check("w8", v, FIB_38);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("workers", workers)
            .with("checksum", v)
    }
}

// ---------------------------------------------------------------------------
// tokio (port of the tokio anchors)
// ---------------------------------------------------------------------------

mod tokio_rt {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    pub fn run(workload: &str, arg: Option<u64>) -> Outcome {
        let workers = if workload == "w8" {
            arg.unwrap_or(2)
        } else {
            2
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers as usize)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let w = workload.to_owned();
        rt.block_on(async move {
            tokio::spawn(async {}).await.expect("tokio warm-up");
            let driver = tokio::spawn(async move {
                match w.as_str() {
                    "w1" => w1().await,
                    "w2" => w2().await,
                    "w3" => w3().await,
                    "w3u" => w3u().await,
                    "w4" => w4().await,
                    "w4chan" => w4chan().await,
                    "w5" => w5(arg.unwrap_or(W5_DEFAULT_N)).await,
                    "w6" => w6().await,
                    "w7" => w7().await,
                    "w8" => w8(workers).await,
                    "w12" => w12().await,
                    other => panic!("tokio has no workload {other}"),
                }
            });
            match driver.await {
                Ok(o) => o,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        })
    }

    async fn w1() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut hs = Vec::with_capacity(W1_N as usize);
        for _ in 0..W1_N {
            let c = ctr.clone();
            hs.push(tokio::spawn(async move {
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in hs {
            h.await.expect("w1 task");
        }
        let t = t0.elapsed();
        let v = check("w1", ctr.load(Ordering::SeqCst), W1_N);
        Outcome::default()
            .with("ns_per_spawn", ns_per(t, W1_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    async fn w2() -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W2_TASKS)
            .map(|_| {
                let c = ctr.clone();
                tokio::spawn(async move {
                    for _ in 0..W2_YIELDS {
                        tokio::task::yield_now().await;
                    }
                    c.fetch_add(W2_YIELDS, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.await.expect("w2 task");
        }
        let t = t0.elapsed();
        let v = check("w2", ctr.load(Ordering::SeqCst), W2_TASKS * W2_YIELDS);
        Outcome::default()
            .with("ns_per_yield", ns_per(t, W2_TASKS * W2_YIELDS))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    async fn w12() -> Outcome {
        use tokio::sync::mpsc::unbounded_channel;
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING).map(|_| unbounded_channel()).unzip();
        let (done_tx, mut done) = unbounded_channel::<u64>();
        let t0 = Instant::now();
        for (id, mut rx) in rxs.into_iter().enumerate() {
            let next = txs[(id + 1) % RING as usize].clone();
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let send = |n| next.send(n).is_ok();
                    if !ring_step(id as u64, n, send, |id| done_tx.send(id).is_ok()) {
                        return;
                    }
                }
            });
        }
        txs[0].send(RING_HOPS).expect("ring start");
        drop(txs);
        let id = done.recv().await.expect("ring end");
        hop_outcome(t0.elapsed(), id)
    }

    async fn w3() -> Outcome {
        let (tx_a, mut rx_a) = tokio::sync::mpsc::channel::<u64>(1);
        let (tx_b, mut rx_b) = tokio::sync::mpsc::channel::<u64>(1);
        let t0 = Instant::now();
        let ponger = tokio::spawn(async move {
            for _ in 0..W3_N {
                let v = rx_a.recv().await.expect("ping");
                tx_b.send(v + 1).await.expect("pong");
            }
        });
        let pinger = tokio::spawn(async move {
            let mut v = 0u64;
            for _ in 0..W3_N {
                tx_a.send(v).await.expect("ping");
                v = rx_b.recv().await.expect("pong");
            }
            v
        });
        let v = pinger.await.expect("pinger");
        ponger.await.expect("ponger");
        let t = t0.elapsed();
        let v = check("w3", v, W3_N);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    /// w3 over unbounded channels.
    async fn w3u() -> Outcome {
        let (tx_a, mut rx_a) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (tx_b, mut rx_b) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let t0 = Instant::now();
        let ponger = tokio::spawn(async move {
            for _ in 0..W3_N {
                let v = rx_a.recv().await.expect("ping");
                tx_b.send(v + 1).expect("pong");
            }
        });
        let pinger = tokio::spawn(async move {
            let mut v = 0u64;
            for _ in 0..W3_N {
                tx_a.send(v).expect("ping");
                v = rx_b.recv().await.expect("pong");
            }
            v
        });
        let v = pinger.await.expect("pinger");
        ponger.await.expect("ponger");
        let t = t0.elapsed();
        let v = check("w3u", v, W3_N);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet(num: u64, size: u64) -> BoxFut<u64> {
        Box::pin(async move {
            if size == 1 {
                return num;
            }
            let step = size / SKYNET_DIV;
            let hs: Vec<_> = (0..SKYNET_DIV)
                .map(|i| tokio::spawn(skynet(num + i * step, step)))
                .collect();
            let mut sum = 0;
            for h in hs {
                sum += h.await.expect("skynet child");
            }
            sum
        })
    }

    async fn w4() -> Outcome {
        let t0 = Instant::now();
        let v = tokio::spawn(skynet(0, SKYNET_LEAVES))
            .await
            .expect("skynet root");
        let t = t0.elapsed();
        let v = check("w4", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn skynet_chan(tx: tokio::sync::mpsc::UnboundedSender<u64>, num: u64, size: u64) -> BoxFut<()> {
        Box::pin(async move {
            if size == 1 {
                tx.send(num).expect("skynet send");
                return;
            }
            let step = size / SKYNET_DIV;
            let (rtx, mut rrx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            for i in 0..SKYNET_DIV {
                tokio::spawn(skynet_chan(rtx.clone(), num + i * step, step));
            }
            drop(rtx);
            let mut sum = 0;
            for _ in 0..SKYNET_DIV {
                sum += rrx.recv().await.expect("skynet recv");
            }
            tx.send(sum).expect("skynet send");
        })
    }

    async fn w4chan() -> Outcome {
        let t0 = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        tokio::spawn(skynet_chan(tx, 0, SKYNET_LEAVES));
        let v = rx.recv().await.expect("skynet root");
        let t = t0.elapsed();
        let v = check("w4chan", v, SKYNET_SUM);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    async fn w5(n: u64) -> Outcome {
        let ctr = Arc::new(AtomicU64::new(0));
        let before = vm_rss_kb();
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = ctr.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(W5_SLEEP).await;
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        tokio::time::sleep(W5_SAMPLE_AFTER.saturating_sub(t0.elapsed())).await;
        let maps = map_count();
        for h in hs {
            h.await.expect("w5 task");
        }
        let t = t0.elapsed();
        let v = check("w5", ctr.load(Ordering::SeqCst), n);
        w5_outcome(n, before, maps, t).with("checksum", v)
    }

    async fn w6() -> Outcome {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let t0 = Instant::now();
        let server = tokio::spawn(async move {
            let mut hs = Vec::new();
            for _ in 0..W6_CLIENTS {
                let (mut s, _) = listener.accept().await.expect("accept");
                s.set_nodelay(true).expect("nodelay");
                hs.push(tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).await.is_ok() {
                        s.write_all(&buf).await.expect("echo");
                    }
                }));
            }
            for h in hs {
                h.await.expect("echo task");
            }
        });
        let ok = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..W6_CLIENTS)
            .map(|id| {
                let ok = ok.clone();
                tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let mut out = [0u8; 64];
                    let mut inb = [0u8; 64];
                    let mut good = 0u64;
                    for i in 0..W6_ROUNDS {
                        out[..8].copy_from_slice(&id.to_le_bytes());
                        out[8..16].copy_from_slice(&i.to_le_bytes());
                        s.write_all(&out).await.expect("write");
                        s.read_exact(&mut inb).await.expect("read");
                        good += u64::from(inb == out);
                    }
                    ok.fetch_add(good, Ordering::Relaxed);
                })
            })
            .collect();
        for h in clients {
            h.await.expect("client");
        }
        let t = t0.elapsed();
        server.await.expect("server");
        let v = check("w6", ok.load(Ordering::SeqCst), W6_CLIENTS * W6_ROUNDS);
        Outcome::default()
            .with(
                "roundtrips_per_s",
                format!("{:.0}", v as f64 / t.as_secs_f64()),
            )
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    async fn w7() -> Outcome {
        let m = Arc::new(tokio::sync::Mutex::new(0u64));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..W7_TASKS)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..W7_INCS {
                        *m.lock().await += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.expect("w7 task");
        }
        let t = t0.elapsed();
        let v = *m.lock().await;
        let v = check("w7", v, W7_TASKS * W7_INCS);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }

    fn pfib(n: u64) -> BoxFut<u64> {
        Box::pin(async move {
            if n < FIB_CUTOFF {
                return sfib(n);
            }
            let h = tokio::spawn(pfib(n - 1));
            let b = pfib(n - 2).await;
            h.await.expect("pfib child") + b
        })
    }

    async fn w8(workers: u64) -> Outcome {
        let t0 = Instant::now();
        let v = pfib(FIB_N).await;
        let t = t0.elapsed();
        let v = check("w8", v, FIB_38);
        Outcome::default()
            .with("internal_ms", ms(t))
            .with("workers", workers)
            .with("checksum", v)
    }
}

// ---------------------------------------------------------------------------
// xbeam: crossbeam-channel between plain threads (w3t's peer)
// ---------------------------------------------------------------------------

mod xbeam_rt {
    use super::*;

    pub fn run(workload: &str) -> Outcome {
        match workload {
            "w3t" => w3t(),
            other => panic!("xbeam has no workload {other}"),
        }
    }

    /// corun's w3t between two plain threads over two unbounded crossbeam channels.
    fn w3t() -> Outcome {
        let (tx_a, rx_a) = crossbeam_channel::unbounded::<u64>();
        let (tx_b, rx_b) = crossbeam_channel::unbounded::<u64>();
        let ponger = std::thread::spawn(move || {
            for _ in 0..=W3T_N {
                let v = rx_a.recv().expect("ping");
                tx_b.send(v + 1).expect("pong");
            }
        });
        tx_a.send(0).expect("ping");
        let mut v = rx_b.recv().expect("pong");
        let t0 = Instant::now();
        for _ in 0..W3T_N {
            tx_a.send(v).expect("ping");
            v = rx_b.recv().expect("pong");
        }
        let t = t0.elapsed();
        ponger.join().expect("ponger");
        let v = check("w3t", v, W3T_N + 1);
        Outcome::default()
            .with("ns_per_roundtrip", ns_per(t, W3T_N))
            .with("internal_ms", ms(t))
            .with("checksum", v)
    }
}

// ---------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------

/// Runs the workload named by `PEERS_CHILD=<runtime>:<workload>[:<arg>]` and prints
/// its `RESULT` line; a failure panics (non-zero exit, message on stderr).
fn child_main(spec: &str) {
    let mut parts = spec.splitn(3, ':');
    let runtime = parts.next().unwrap_or_default().to_owned();
    let workload = parts.next().unwrap_or_default().to_owned();
    let arg = parts.next().and_then(|a| a.parse::<u64>().ok());
    let outcome = match runtime.as_str() {
        "corun" => corun_rt::run(&workload, arg),
        "may" => may_rt::run(&workload, arg),
        "tokio" => tokio_rt::run(&workload, arg),
        "xbeam" => xbeam_rt::run(&workload),
        other => panic!("unknown runtime {other:?} in {CHILD_ENV}={spec:?}"),
    };
    let mut line = format!("RESULT runtime={runtime} workload={workload}");
    for (k, v) in &outcome.0 {
        line.push_str(&format!(" {k}={v}"));
    }
    line.push_str(&format!(" vmhwm_kb={}", vm_hwm_kb()));
    println!("{line}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------

/// One row of the table: a workload run with one argument.
struct Row {
    /// Workload name as given on the command line and to the child.
    workload: &'static str,
    /// Argument passed to the child (w5's N, w8's worker count).
    arg: Option<u64>,
    label: String,
    /// The figure compared across runtimes.
    metric: &'static str,
    lower_is_better: bool,
    /// Further figures shown in the cell, as (key, label).
    extras: &'static [(&'static str, &'static str)],
    /// The runtimes whose best figure the ratio column compares corun against.
    peers: &'static [&'static str],
}

/// A table cell.
#[derive(Clone)]
enum Cell {
    /// Medians of each figure over the runs, a remark to show beside them, and the
    /// row's metric run by run (rounds alternate between runtimes, so run i of two
    /// cells were taken side by side).
    Ok(BTreeMap<String, f64>, &'static str, Vec<f64>),
    Fail(String),
    Na(String),
}

impl Cell {
    fn metric(&self, key: &str) -> Option<f64> {
        match self {
            Cell::Ok(m, _, _) => m.get(key).copied(),
            _ => None,
        }
    }
}

/// The runtimes, in column order. `xbeam` is crossbeam-channel between plain threads:
/// it runs only w3t (whose only peer it is), and its column shows only with w3t.
const RUNTIMES: [&str; 4] = ["corun", "may", "tokio", "xbeam"];
/// The peers of a row unless it names others.
const DEFAULT_PEERS: &[&str] = &["may", "tokio"];
const ALL_WORKLOADS: [&str; 15] = [
    "w1", "w2", "w3", "w3u", "w3t", "w4", "w4chan", "w5", "w6", "w7", "w8", "w9", "w10", "w11",
    "w12",
];

/// Why runtime `rt` has no figure for `workload` (`None`: it is measured).
fn not_run(rt: &str, workload: &str) -> Option<&'static str> {
    match (rt, workload) {
        ("corun", w) => corun_rt::missing(w),
        ("xbeam", "w3t") => None,
        ("xbeam", _) => Some("-"),
        // Go's patterns, measured against Go alone.
        (_, "w9" | "w10" | "w11") => Some("-"),
        (_, "w3t") => Some("n/a (see crossbeam)"),
        _ => None,
    }
}

/// A runtime's name in the table.
fn display_name(rt: &str) -> &str {
    match rt {
        "xbeam" => "crossbeam",
        other => other,
    }
}

fn rows_for(workload: &'static str, w5_n: u64) -> Vec<Row> {
    let row = |arg, label: String, metric, lower_is_better, extras| Row {
        workload,
        arg,
        label,
        metric,
        lower_is_better,
        extras,
        peers: DEFAULT_PEERS,
    };
    match workload {
        "w1" => vec![row(
            None,
            "w1 spawn+join 1M (ns/spawn)".into(),
            "ns_per_spawn",
            true,
            &[],
        )],
        "w2" => vec![row(
            None,
            "w2 1000x1000 yield (ns/yield)".into(),
            "ns_per_yield",
            true,
            &[],
        )],
        "w3" => vec![row(
            None,
            "w3 ping-pong 1M (ns/round trip)".into(),
            "ns_per_roundtrip",
            true,
            &[],
        )],
        "w3u" => vec![Row {
            peers: &["tokio"],
            ..row(
                None,
                "w3 ping-pong 1M, tokio unbounded (ns/round trip)".into(),
                "ns_per_roundtrip",
                true,
                &[],
            )
        }],
        "w3t" => vec![Row {
            peers: &["xbeam"],
            ..row(
                None,
                format!("w3t thread <-> coroutine {}k (ns/round trip)", W3T_N / 1000),
                "ns_per_roundtrip",
                true,
                &[],
            )
        }],
        "w4" => vec![row(
            None,
            "w4 skynet 1M, join handles (ms)".into(),
            "internal_ms",
            true,
            &[("peak_stacks", "peak_stacks ~")],
        )],
        "w4chan" => vec![row(
            None,
            "w4chan skynet 1M, channels (ms)".into(),
            "internal_ms",
            true,
            &[],
        )],
        "w5" => vec![row(
            Some(w5_n),
            format!("w5 {w5_n} x sleep 1 s (bytes/task)"),
            "bytes_per_task",
            true,
            &[("maps", "maps")],
        )],
        "w6" => vec![row(
            None,
            "w6 TCP echo 100x10k (round trips/s, higher is better)".into(),
            "roundtrips_per_s",
            false,
            &[],
        )],
        "w7" => vec![row(
            None,
            "w7 mutex 100x10k (ms)".into(),
            "internal_ms",
            true,
            &[],
        )],
        "w9" => [1u64, 2]
            .into_iter()
            .map(|w| Row {
                peers: &[],
                ..row(
                    Some(w),
                    format!("w9 prime sieve to the 3000th prime, corun on {w} worker(s), Go on 2 Ps (ms)"),
                    "internal_ms",
                    true,
                    &[],
                )
            })
            .collect(),
        "w10" => vec![Row {
            peers: &[],
            ..row(
                None,
                "w10 pipelines, 8 workers, 1M items (ms)".into(),
                "internal_ms",
                true,
                &[],
            )
        }],
        "w12" => vec![row(
            None,
            format!("w12 thread ring, {RING} coroutines, {RING_HOPS} hops (ns/hop)"),
            "ns_per_hop",
            true,
            &[],
        )],
        "w11" => vec![Row {
            peers: &[],
            ..row(
                Some(W11_DEFAULT_CONNS),
                format!("w11 {W11_DEFAULT_CONNS} connections at once x {W11_ROUNDS} round trips (round trips/s)"),
                "roundtrips_per_s",
                false,
                &[("p99_us", "p99 us"), ("vmhwm_kb", "peak RSS kB")],
            )
        }],
        "w8" => [1u64, 2]
            .into_iter()
            .map(|w| {
                let s = if w == 1 { "" } else { "s" };
                row(
                    Some(w),
                    format!("w8 fib({FIB_N}) {w} worker{s} (ms)"),
                    "internal_ms",
                    true,
                    &[],
                )
            })
            .collect(),
        _ => unreachable!(),
    }
}

/// What a finished child left behind.
struct ChildRun {
    stdout: String,
    stderr: String,
    /// `None`: success; else why it failed.
    failure: Option<String>,
}

fn run_with_timeout(mut cmd: Command) -> ChildRun {
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return ChildRun {
                stdout: String::new(),
                stderr: String::new(),
                failure: Some(format!("could not start: {e}")),
            }
        }
    };
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let mut buf = Vec::new();
                let _ = p.read_to_end(&mut buf);
                s = String::from_utf8_lossy(&buf).into_owned();
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let timeout = child_timeout();
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let failure = if timed_out {
        let printed = if stdout.contains("RESULT ") {
            " (after printing its RESULT: hang at exit?)"
        } else {
            ""
        };
        Some(format!(
            "timeout: killed after {} s{printed}",
            timeout.as_secs()
        ))
    } else {
        match status {
            Some(st) if st.success() => None,
            Some(st) => Some(first_error_line(&stderr).unwrap_or_else(|| describe_status(st))),
            None => Some("lost track of the child".into()),
        }
    };
    ChildRun {
        stdout,
        stderr,
        failure,
    }
}

fn describe_status(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    }
}

/// The first line of stderr, joined with the next when it only announces it (a
/// panic header ending in ':'); a panic reads `panic: <message> (at <file:line>)`.
fn first_error_line(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if !first.ends_with(':') {
        return Some(first.to_owned());
    }
    let next = lines.next().unwrap_or_default();
    match first.split_once(" panicked at ") {
        Some((_, at)) => {
            // Keep the last three components of the path: crate/src/file.rs:l:c.
            let at = at.trim_end_matches(':');
            let parts: Vec<&str> = at.rsplitn(4, '/').collect();
            let short = parts[..parts.len().min(3)]
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            Some(format!("panic: {next} (at {short})"))
        }
        None => Some(format!("{first} {next}")),
    }
}

/// The numeric key=value figures of the first `RESULT` line of `stdout`.
fn parse_result(stdout: &str) -> Option<BTreeMap<String, f64>> {
    let line = stdout.lines().find(|l| l.starts_with("RESULT "))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `make_cmd()` `repeat` times (stopping at the first failure) and folds the
/// results into a cell of medians.
/// How to run one column of a row: its label, its command, a remark for its cell.
type Runner = (String, Box<dyn Fn() -> Command>, &'static str);

/// One run of one cell: its figures, or why it failed.
fn run_once(
    what: &str,
    round: usize,
    repeat: usize,
    metric: &str,
    cmd: Command,
) -> Result<BTreeMap<String, f64>, String> {
    let t0 = Instant::now();
    let r = run_with_timeout(cmd);
    let parsed = parse_result(&r.stdout);
    let failure = r.failure.or_else(|| match &parsed {
        None => {
            Some(first_error_line(&r.stderr).unwrap_or_else(|| "printed no RESULT line".into()))
        }
        Some(m) if !m.contains_key(metric) => Some(format!("RESULT has no {metric}=")),
        Some(_) => None,
    });
    if let Some(f) = failure {
        eprintln!("  {what} run {round}/{repeat}: FAILED: {f}");
        return Err(f);
    }
    let m = parsed.unwrap_or_default();
    eprintln!(
        "  {what} run {round}/{repeat}: {metric}={} ({:.1} s)",
        m[metric],
        t0.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// A cell from its runs: the median of each figure, and the metric run by run.
fn merge(runs: Vec<BTreeMap<String, f64>>, metric: &str, note: &'static str) -> Cell {
    let mut merged = BTreeMap::new();
    for key in runs[0].keys() {
        let vals: Vec<f64> = runs.iter().filter_map(|r| r.get(key).copied()).collect();
        merged.insert(key.clone(), median(vals));
    }
    let per_run = runs.iter().map(|r| r[metric]).collect();
    Cell::Ok(merged, note, per_run)
}

/// The Go anchors' command line for a row, and a remark on how it differs.
fn go_args(row: &Row) -> Option<(Vec<String>, &'static str)> {
    let a = |v: &[String]| v.to_vec();
    match row.workload {
        "w1" | "w2" | "w3" | "w6" | "w7" | "w9" | "w10" => Some((a(&[row.workload.into()]), "")),
        "w11" => Some((
            a(&[
                "w11".into(),
                row.arg.unwrap_or(W11_DEFAULT_CONNS).to_string(),
            ]),
            "",
        )),
        // The anchors have no unbounded ping-pong: Go's w3 (unbuffered) again.
        "w3u" => Some((a(&["w3".into()]), " (w3's, unbuffered)")),
        "w4" => Some((a(&["w4".into()]), " (chan)")),
        "w4chan" => Some((a(&["w4".into()]), "")),
        "w5" => Some((
            a(&["w5".into(), row.arg.unwrap_or(W5_DEFAULT_N).to_string()]),
            " (HWM/N, no baseline, 3 s sleep)",
        )),
        "w8" => Some((
            a(&[
                "w8".into(),
                row.arg.unwrap_or(2).to_string(),
                FIB_N.to_string(),
            ]),
            "",
        )),
        _ => None,
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_cell(cell: &Cell, row: &Row) -> String {
    match cell {
        Cell::Ok(m, note, _) => {
            let mut s = m.get(row.metric).map(|&v| fmt_num(v)).unwrap_or_default();
            let extras: Vec<String> = row
                .extras
                .iter()
                .filter_map(|(k, label)| m.get(*k).map(|v| format!("{label} {v:.0}")))
                .collect();
            if !extras.is_empty() {
                s.push_str(&format!(" ({})", extras.join(", ")));
            }
            s.push_str(note);
            s
        }
        Cell::Fail(f) => {
            let mut f = f.replace('|', "\\|");
            if f.len() > 200 {
                let mut cut = 200;
                while !f.is_char_boundary(cut) {
                    cut -= 1;
                }
                f.truncate(cut);
                f.push('…');
            }
            format!("fails: {f}")
        }
        Cell::Na(s) => s.clone(),
    }
}

/// corun's figure over the best of `peers`, with a remark on the direction.
/// corun over the best of `peers`, round by round, and the median of those ratios
/// (the machine drifts: only runs taken side by side compare).
fn paired_ratio(corun: &Cell, peers: &[&Cell], lower_is_better: bool) -> String {
    let runs = |c: &Cell| match c {
        Cell::Ok(_, _, v) => Some(v.clone()),
        _ => None,
    };
    let Some(mine) = runs(corun) else {
        return "-".into();
    };
    let theirs: Vec<Vec<f64>> = peers.iter().filter_map(|c| runs(c)).collect();
    if theirs.is_empty() {
        return "-".into();
    }
    let ratios: Vec<f64> = (0..mine.len())
        .filter_map(|i| {
            let best = theirs
                .iter()
                .filter_map(|v| v.get(i).copied())
                .reduce(if lower_is_better { f64::min } else { f64::max })?;
            (best > 0.0).then(|| mine[i] / best)
        })
        .collect();
    if ratios.is_empty() {
        return "-".into();
    }
    let m = median(ratios);
    if lower_is_better {
        format!("{m:.2}x")
    } else {
        format!("{m:.2}x (higher is better)")
    }
}

fn ratio(corun: Option<f64>, peers: &[Option<f64>], lower_is_better: bool) -> String {
    let best =
        peers
            .iter()
            .flatten()
            .copied()
            .reduce(if lower_is_better { f64::min } else { f64::max });
    match (corun, best) {
        (Some(c), Some(b)) if b > 0.0 => {
            if lower_is_better {
                format!("{:.2}x", c / b)
            } else {
                format!("{:.2}x (higher is better)", c / b)
            }
        }
        _ => "-".into(),
    }
}

fn machine_line() -> String {
    let cmd = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let nproc = cmd("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = cmd("uname", &["-r"]).unwrap_or_else(|| "?".into());
    let date = cmd("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).unwrap_or_else(|| "?".into());
    format!("machine: nproc={nproc}, cpu={cpu}, kernel={kernel}, date={date}")
}

fn parent_main() {
    let mut wanted: Vec<String> = Vec::new();
    for a in std::env::args().skip(1) {
        if a.starts_with('-') {
            continue; // cargo's --bench, and any other flag
        }
        if !ALL_WORKLOADS.contains(&a.as_str()) {
            eprintln!(
                "peers: unknown workload {a:?}; choose among {}",
                ALL_WORKLOADS.join(" ")
            );
            std::process::exit(2);
        }
        wanted.push(a);
    }
    let selected: Vec<&'static str> = ALL_WORKLOADS
        .into_iter()
        .filter(|w| {
            wanted.is_empty()
                || wanted.iter().any(|f| f == w)
                || (*w == "w4chan" && wanted.iter().any(|f| f == "w4"))
                || (*w == "w3u" && wanted.iter().any(|f| f == "w3"))
        })
        .collect();
    let repeat: usize = std::env::var("PEERS_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let w5_n: u64 = std::env::var("PEERS_W5_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(W5_DEFAULT_N);
    let go_bin = std::env::var("PEERS_GO").unwrap_or_else(|_| DEFAULT_GO.into());
    let go = std::path::Path::new(&go_bin)
        .is_file()
        .then_some(go_bin.clone());
    let exe = std::env::current_exe().expect("current_exe");

    let machine = machine_line();
    println!("{machine}");
    eprintln!(
        "peers: workloads {}, {repeat} run(s) each, median reported{}",
        selected.join(" "),
        if go.is_some() {
            format!(", Go from {go_bin}")
        } else {
            String::new()
        }
    );

    let mut table: Vec<(Row, Vec<Cell>, Option<Cell>)> = Vec::new();
    for w in selected {
        for row in rows_for(w, w5_n) {
            // Column i of `cmds` is runtime i (then Go): how to run it, or why not.
            let mut cmds: Vec<Result<Runner, Cell>> = Vec::new();
            for rt in RUNTIMES {
                if let Some(reason) = not_run(rt, w) {
                    cmds.push(Err(Cell::Na(reason.into())));
                    continue;
                }
                let spec = match row.arg {
                    Some(a) => format!("{rt}:{w}:{a}"),
                    None => format!("{rt}:{w}"),
                };
                let exe = exe.clone();
                cmds.push(Ok((
                    format!("{rt} {}", row.label),
                    Box::new(move || {
                        let mut c = Command::new(&exe);
                        c.env(CHILD_ENV, &spec);
                        c
                    }),
                    "",
                )));
            }
            if let Some(bin) = &go {
                cmds.push(match go_args(&row) {
                    Some((args, note)) => {
                        let bin = bin.clone();
                        Ok((
                            format!("go {}", row.label),
                            Box::new(move || {
                                let mut c = Command::new(&bin);
                                c.args(&args);
                                c
                            }),
                            note,
                        ))
                    }
                    None => Err(Cell::Na("n/a".into())),
                });
            }
            // Rounds alternate between the runtimes (A B C A B C ...): the machine's
            // speed drifts, so run i of each column is taken side by side.
            let mut runs: Vec<Result<Vec<BTreeMap<String, f64>>, String>> =
                cmds.iter().map(|_| Ok(Vec::new())).collect();
            for round in 1..=repeat {
                for (c, out) in cmds.iter().zip(runs.iter_mut()) {
                    let (Ok((what, make, _)), Ok(done)) = (c, out.as_mut()) else {
                        continue;
                    };
                    match run_once(what, round, repeat, row.metric, make()) {
                        Ok(m) => done.push(m),
                        Err(f) => *out = Err(f),
                    }
                }
            }
            let mut cells: Vec<Cell> = cmds
                .into_iter()
                .zip(runs)
                .map(|(c, r)| match (c, r) {
                    (Err(na), _) => na,
                    (Ok(_), Err(f)) => Cell::Fail(f),
                    (Ok((_, _, note)), Ok(runs)) => merge(runs, row.metric, note),
                })
                .collect();
            let go_cell = go.is_some().then(|| cells.pop().expect("Go's column"));
            table.push((row, cells, go_cell));
        }
    }

    print_table(&table, go.is_some());
}

fn print_table(table: &[(Row, Vec<Cell>, Option<Cell>)], with_go: bool) {
    println!();
    // xbeam's column only when some row measures it.
    let with_xbeam = table
        .iter()
        .any(|(r, _, _)| not_run("xbeam", r.workload).is_none());
    let shown: Vec<usize> = (0..RUNTIMES.len())
        .filter(|&i| RUNTIMES[i] != "xbeam" || with_xbeam)
        .collect();
    let mut header = String::from("| workload |");
    let mut rule = String::from("|---|");
    for &i in &shown {
        match RUNTIMES[i] {
            "xbeam" => header.push_str(" crossbeam (threads) |"),
            rt => header.push_str(&format!(" {rt} |")),
        }
        rule.push_str("---|");
    }
    if with_go {
        header.push_str(" go |");
        rule.push_str("---|");
    }
    header.push_str(" corun / best peer |");
    rule.push_str("---|");
    if with_go {
        header.push_str(" corun / go |");
        rule.push_str("---|");
    }
    println!("{header}");
    println!("{rule}");
    let go_comparable = |cell: &Option<Cell>| match cell {
        Some(c @ Cell::Ok(_, "", _)) => Some(c.clone()),
        _ => None,
    };
    let column = |rt: &str| RUNTIMES.iter().position(|r| *r == rt).expect("runtime");
    for (row, cells, go_cell) in table {
        let mut line = format!("| {} |", row.label);
        for &i in &shown {
            line.push_str(&format!(" {} |", fmt_cell(&cells[i], row)));
        }
        if with_go {
            let g = go_cell
                .as_ref()
                .map(|c| fmt_cell(c, row))
                .unwrap_or_default();
            line.push_str(&format!(" {g} |"));
        }
        let peers: Vec<&Cell> = row.peers.iter().map(|p| &cells[column(p)]).collect();
        let mut r = paired_ratio(&cells[0], &peers, row.lower_is_better);
        if row.peers != DEFAULT_PEERS && r != "-" {
            let names: Vec<&str> = row.peers.iter().map(|p| display_name(p)).collect();
            r.push_str(&format!(" (vs {})", names.join(", ")));
        }
        line.push_str(&format!(" {r} |"));
        if with_go {
            let r = match go_comparable(go_cell) {
                Some(g) => paired_ratio(&cells[0], &[&g], row.lower_is_better),
                None => "-".into(),
            };
            line.push_str(&format!(" {r} |"));
        }
        println!("{line}");
    }
    // w8's speedup row, from its two timed rows.
    let w8: Vec<&(Row, Vec<Cell>, Option<Cell>)> = table
        .iter()
        .filter(|(r, _, _)| r.workload == "w8")
        .collect();
    if let [(row, one, go1), (_, two, go2)] = w8.as_slice() {
        let speedup = |a: &Cell, b: &Cell| -> Option<f64> {
            Some(a.metric("internal_ms")? / b.metric("internal_ms")?)
        };
        let s: Vec<Option<f64>> = one.iter().zip(two).map(|(a, b)| speedup(a, b)).collect();
        let show = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let mut line = String::from("| w8 speedup t1/t2 (higher is better) |");
        for &i in &shown {
            line.push_str(&format!(" {} |", show(s[i])));
        }
        let g = match (go1, go2) {
            (Some(a), Some(b)) => speedup(a, b),
            _ => None,
        };
        if with_go {
            line.push_str(&format!(" {} |", show(g)));
        }
        let peers: Vec<Option<f64>> = row.peers.iter().map(|p| s[column(p)]).collect();
        line.push_str(&format!(" {} |", ratio(s[0], &peers, false)));
        if with_go {
            line.push_str(&format!(" {} |", ratio(s[0], &[g], false)));
        }
        println!("{line}");
    }
    println!();
    println!(
        "Figures are medians over the runs, which alternate between runtimes round by \
         round; ratios are the median over rounds of corun's figure over the best peer's in \
         that round (may, tokio, unless the ratio names its peer): below 1x is better for times and \
         sizes, above 1x for throughput and speedup. w3's tokio uses bounded(1) channels, \
         w3u's unbounded ones (corun and may use unbounded channels in both); w3t is a plain \
         thread <-> coroutine round trip on corun, and crossbeam-channel between two plain \
         threads. peak_stacks ~ is corun's mapped-minus-pooled stacks sampled every \
         1 ms (approximate). Go's w4 is its channel version; Go's w5 divides the whole \
         VmHWM by N (no baseline) and sleeps 3 s; Go has no w3u, its cell repeats w3."
    );
}

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(spec) => child_main(&spec),
        Err(_) => parent_main(),
    }
}
