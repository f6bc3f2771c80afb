//! The TCP soak: `examples/echo.rs` serves in a child process; coroutines and plain
//! threads here connect to it over and over, each connection doing one seeded
//! behaviour, until the time is up:
//!
//! - `talk`: round trips of random sizes, each echo compared byte for byte, then a
//!   half close (`shutdown(Write)`) answered by EOF;
//! - `stream`: one coroutine writes up to 256 KiB in random chunks and half-closes
//!   while another reads the echo to EOF: exactly the bytes sent come back, in order;
//! - `reset`: some bytes out and back, then `SO_LINGER` 0 and close (an RST);
//! - `timeout`: a read with a short timeout and nothing sent times out (no earlier
//!   than the timeout), then the connection still echoes and closes cleanly;
//! - `slow`: bytes one at a time with pauses;
//! - `hangup`: connect and close without a byte.
//!
//! Every byte a client sends in talk, stream, timeout and slow is checked to have
//! come back before its half close, and the totals are compared at the end. The
//! server must survive all of it (it is alive and echoing at the end).

use crate::common::{mix64, say, Rng, Watchdog};
use corun::net::TcpStream;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BEHAVIOURS: [&str; 6] = ["talk", "stream", "reset", "timeout", "slow", "hangup"];
/// Client coroutines and plain threads.
const CO_CLIENTS: usize = 24;
const THREAD_CLIENTS: usize = 2;

#[derive(Default)]
struct Totals {
    per_behaviour: [AtomicU64; 6],
    sent: AtomicU64,
    echoed: AtomicU64,
    in_flight: AtomicU64,
    timeouts_seen: AtomicU64,
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(seed: u64, secs: Duration) {
    let Some(echo) = crate::support::example("echo") else {
        return;
    };
    say(&format!(
        "tcp soak: seed {seed} (reproduce: CORUN_STRESS_SEED={seed}), {:.0} s",
        secs.as_secs_f64()
    ));
    let mut cmd = Command::new(&echo);
    cmd.args(["server", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe. The server dies with this test's thread,
    // also when the watchdog aborts the process (no destructor runs then).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd.spawn().expect("starting the echo example");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: SocketAddr = first
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("echo printed {first:?}: {e}"));
    let server_stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    let stderr_text = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(server_stderr).read_to_string(&mut s);
        s
    });

    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let watchdog =
        {
            let t = totals.clone();
            Watchdog::start(
                format!("the TCP soak (seed {seed})"),
                secs + Duration::from_secs(120),
                Some(rt.handle().clone()),
                move || {
                    format!(
                    "tcp soak seed {seed} (reproduce: CORUN_STRESS_SEED={seed}): connections per \
                     behaviour {:?} = {:?}, {} bytes sent, {} echoed, {} connections in flight",
                    BEHAVIOURS,
                    t.per_behaviour.iter().map(|c| c.load(SeqCst)).collect::<Vec<_>>(),
                    t.sent.load(SeqCst),
                    t.echoed.load(SeqCst),
                    t.in_flight.load(SeqCst)
                )
                },
            )
        };
    let t0 = Instant::now();
    let deadline = t0 + secs;
    let mut cos = Vec::new();
    for c in 0..CO_CLIENTS {
        let (totals, stop) = (totals.clone(), stop.clone());
        cos.push(rt.spawn(move || client(addr, seed, c, deadline, &totals, &stop)));
    }
    let mut threads = Vec::new();
    for c in CO_CLIENTS..CO_CLIENTS + THREAD_CLIENTS {
        let (totals, stop) = (totals.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            client(addr, seed, c, deadline, &totals, &stop)
        }));
    }
    let mut failures = Vec::new();
    for h in cos {
        if let Err(e) = h.join() {
            stop.store(true, SeqCst);
            failures.push(text(&*e));
        }
    }
    for t in threads {
        if let Err(e) = t.join() {
            failures.push(text(&*e));
        }
    }
    drop(watchdog);
    assert!(
        failures.is_empty(),
        "tcp soak failed (reproduce: CORUN_STRESS_SEED={seed}): {}",
        failures.join("; ")
    );
    // The server survived and still echoes.
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the echo server died: {:?}",
        server.0.try_wait()
    );
    let last = rt.spawn(move || {
        let mut rng = Rng::new(seed);
        let t = Totals::default();
        talk(addr, &mut rng, &t);
        t.echoed.load(SeqCst)
    });
    assert!(last.join().unwrap() > 0);
    drop(server);
    let server_err = stderr_text.join().unwrap();
    assert!(
        !server_err.contains("panicked"),
        "the echo server panicked:\n{server_err}"
    );
    let (sent, echoed) = (totals.sent.load(SeqCst), totals.echoed.load(SeqCst));
    assert_eq!(sent, echoed, "bytes sent vs echoed back");
    let counts: Vec<u64> = totals
        .per_behaviour
        .iter()
        .map(|c| c.load(SeqCst))
        .collect();
    say(&format!(
        "tcp soak: seed {seed} passed in {:.1} s: connections {:?} = {:?}, {} bytes echoed \
         and checked, {} read timeouts",
        t0.elapsed().as_secs_f64(),
        BEHAVIOURS,
        counts,
        echoed,
        totals.timeouts_seen.load(SeqCst)
    ));
    assert!(counts.iter().sum::<u64>() > 0);
}

fn text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into())
}

/// One client: connections until the deadline.
fn client(
    addr: SocketAddr,
    seed: u64,
    c: usize,
    deadline: Instant,
    totals: &Totals,
    stop: &AtomicBool,
) {
    let mut rng = Rng::new(mix64(seed ^ (c as u64 + 1).wrapping_mul(0x9e37)));
    while Instant::now() < deadline && !stop.load(SeqCst) {
        let b = rng.below(BEHAVIOURS.len() as u64) as usize;
        totals.in_flight.fetch_add(1, SeqCst);
        match b {
            0 => talk(addr, &mut rng, totals),
            1 => stream(addr, &mut rng, totals),
            2 => reset(addr, &mut rng),
            3 => timeout(addr, &mut rng, totals),
            4 => slow(addr, &mut rng, totals),
            _ => drop(connect(addr)),
        }
        totals.in_flight.fetch_sub(1, SeqCst);
        totals.per_behaviour[b].fetch_add(1, SeqCst);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    // A long soak can run out of ephemeral ports where closed connections wait in
    // TIME_WAIT (loopback reuses them by default): wait for one to free up.
    let mut tries = 0;
    let s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable && tries < 6000 => {
                tries += 1;
                corun::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect to {addr}: {e}"),
        }
    };
    s.set_nodelay(true).unwrap();
    s
}

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}

/// The half close, then the server's EOF.
fn close_cleanly(s: &TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 16];
    let n = (&*s).read(&mut buf).unwrap();
    assert_eq!(n, 0, "bytes after everything was echoed");
}

fn round_trip(s: &TcpStream, msg: &[u8], totals: &Totals) {
    (&*s).write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    (&*s).read_exact(&mut back).unwrap();
    assert!(back == msg, "the echo differs from what was sent");
    totals.sent.fetch_add(msg.len() as u64, SeqCst);
    totals.echoed.fetch_add(back.len() as u64, SeqCst);
}

fn talk(addr: SocketAddr, rng: &mut Rng, totals: &Totals) {
    let s = connect(addr);
    for _ in 0..1 + rng.below(8) {
        let n = 1 + rng.below(16 * 1024) as usize;
        round_trip(&s, &bytes(rng, n), totals);
    }
    close_cleanly(&s);
}

fn stream(addr: SocketAddr, rng: &mut Rng, totals: &Totals) {
    let s = Arc::new(connect(addr));
    let total = 1 + rng.below(256 * 1024) as usize;
    let data = Arc::new(bytes(rng, total));
    let chunk_seed = rng.next();
    // The writer: random chunks, then the half close.
    let (s2, d2) = (s.clone(), data.clone());
    let writer = move || {
        let mut r = Rng::new(chunk_seed);
        let mut off = 0;
        while off < d2.len() {
            let n = (1 + r.below(32 * 1024) as usize).min(d2.len() - off);
            (&*s2).write_all(&d2[off..off + n]).unwrap();
            off += n;
        }
        s2.shutdown(Shutdown::Write).unwrap();
    };
    // On a coroutine the writer is another coroutine; on a plain thread, a thread.
    let in_coroutine = !corun::current().is_thread();
    let w_co = in_coroutine.then(|| corun::go!(writer.clone()));
    let w_th = (!in_coroutine).then(|| std::thread::spawn(writer));
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; 1 + rng.below(64 * 1024) as usize];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("stream read: {e}"),
        }
    }
    if let Some(w) = w_co {
        w.join().unwrap();
    }
    if let Some(w) = w_th {
        w.join().unwrap();
    }
    assert_eq!(got.len(), total, "stream: bytes back vs sent");
    assert!(got == *data, "stream: the echo differs from what was sent");
    totals.sent.fetch_add(total as u64, SeqCst);
    totals.echoed.fetch_add(got.len() as u64, SeqCst);
}

fn reset(addr: SocketAddr, rng: &mut Rng) {
    let s = connect(addr);
    let n = 1 + rng.below(4096) as usize;
    let msg = bytes(rng, n);
    (&s).write_all(&msg).unwrap();
    if rng.chance(500) {
        // Read some of the echo back first.
        let mut back = vec![0u8; 1 + rng.below(msg.len() as u64) as usize];
        (&s).read_exact(&mut back).unwrap();
        assert!(back[..] == msg[..back.len()], "reset: the echo differs");
    }
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s); // RST
}

fn timeout(addr: SocketAddr, rng: &mut Rng, totals: &Totals) {
    let s = connect(addr);
    let t = Duration::from_millis(10 + rng.below(40));
    s.set_read_timeout(Some(t)).unwrap();
    let mut buf = [0u8; 8];
    let t0 = Instant::now();
    match (&s).read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            let waited = t0.elapsed();
            // Never early (1 ms of slack for the timer's rounding); any lateness is
            // the machine's load, not checked.
            assert!(
                waited + Duration::from_millis(1) >= t,
                "read timed out after {waited:?}, timeout {t:?}"
            );
            totals.timeouts_seen.fetch_add(1, SeqCst);
        }
        other => panic!("a read with nothing sent gave {other:?}"),
    }
    s.set_read_timeout(None).unwrap();
    let n = 1 + rng.below(2048) as usize;
    round_trip(&s, &bytes(rng, n), totals);
    close_cleanly(&s);
}

fn slow(addr: SocketAddr, rng: &mut Rng, totals: &Totals) {
    let s = connect(addr);
    for _ in 0..1 + rng.below(6) {
        let b = [rng.next() as u8];
        round_trip(&s, &b, totals);
        corun::sleep(Duration::from_micros(rng.below(2000)));
    }
    close_cleanly(&s);
}
