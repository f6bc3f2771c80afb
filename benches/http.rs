//! HTTP hello under `wrk`: corun's `examples/http_hello.rs` and
//! `examples/http_naive.rs` (the same server written naively: `BufReader::read_line`,
//! `BufWriter`) beside `may_minihttp`'s hello server and a `hyper` hello server on
//! tokio, each in a child process of this binary with 2 workers.
//!
//!     cargo bench --bench http
//!
//! All servers start up front and are warmed once; then each round runs `wrk` once
//! against each server in turn, so that a drift of the machine hits all of them. The
//! table shows per server the median requests/s and the CPU seconds per wall second
//! of the server and of `wrk` (on 2 cores they share, a server that leaves `wrk`
//! more CPU gets more requests), and the median of the per-round ratios.
//!
//! Environment: `HTTP_SECS` (seconds per `wrk` run, default 10), `HTTP_REPEAT`
//! (rounds, default 5), `HTTP_CONNS` (default 100). Needs Debian's `wrk`
//! (`apt-get install wrk`); without it the bench says so and exits.

mod common;

use common::{announced, env_or, median, Killed};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../examples/http_hello.rs"]
#[allow(dead_code)]
mod http_hello;

#[path = "../examples/http_naive.rs"]
#[allow(dead_code)]
mod http_naive;

const CHILD_ENV: &str = "HTTP_CHILD";
const SERVERS: [&str; 4] = ["corun", "may_minihttp", "hyper", "corun_naive"];
/// The ratios reported, as (numerator, denominator) servers.
const RATIOS: [(&str, &str); 3] = [
    ("corun", "may_minihttp"),
    ("corun", "hyper"),
    ("corun_naive", "may_minihttp"),
];

/// One `wrk` run: requests/s, and CPU seconds per wall second of server and `wrk`.
#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    server_cpu: f64,
    wrk_cpu: f64,
}

fn main() {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        return serve(&which);
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk is not installed: `apt-get install wrk`, then run `cargo bench --bench http` again");
        return;
    }
    let secs = env_or("HTTP_SECS", 10);
    let repeat = env_or("HTTP_REPEAT", 5).max(1) as usize;
    let conns = env_or("HTTP_CONNS", 100);
    let me = std::env::current_exe().expect("own path");
    let mut children: Vec<Killed> = Vec::new();
    let mut urls = Vec::new();
    for server in SERVERS {
        let mut child = Command::new(&me)
            .env(CHILD_ENV, server)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server child");
        let addr = announced(&mut child);
        children.push(Killed(child));
        urls.push(format!("http://{addr}/"));
    }
    // Warm-up: connections, stacks, caches.
    for url in &urls {
        wrk(url, 1, conns);
    }
    // runs[s][round]
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); SERVERS.len()];
    for round in 1..=repeat {
        for (i, server) in SERVERS.iter().enumerate() {
            let pid = children[i].0.id();
            let cpu0 = proc_cpu_secs(pid);
            let t0 = Instant::now();
            let (rps, wrk_secs) = wrk(&urls[i], secs, conns);
            let wall = t0.elapsed().as_secs_f64();
            let run = Run {
                rps,
                server_cpu: (proc_cpu_secs(pid) - cpu0) / wall,
                wrk_cpu: wrk_secs / wall,
            };
            println!(
                "  round {round}/{repeat} {server}: {rps:.0} requests/s, server {:.2} CPU/s, wrk {:.2} CPU/s",
                run.server_cpu, run.wrk_cpu
            );
            runs[i].push(run);
        }
    }
    drop(children);
    let index = |name: &str| SERVERS.iter().position(|s| *s == name).expect("server");
    println!();
    println!("| server (wrk -t2 -c{conns} -d{secs}s, {repeat} rounds) | requests/s | server CPU/s | wrk CPU/s |");
    println!("|---|---|---|---|");
    for (server, r) in SERVERS.iter().zip(&runs) {
        let m = |f: fn(&Run) -> f64| median(r.iter().map(f).collect());
        println!(
            "| {server} | {:.0} | {:.2} | {:.2} |",
            m(|r| r.rps),
            m(|r| r.server_cpu),
            m(|r| r.wrk_cpu)
        );
    }
    println!();
    println!("| ratio (median of per-round ratios) | requests/s |");
    println!("|---|---|");
    for (a, b) in RATIOS {
        let (ra, rb) = (&runs[index(a)], &runs[index(b)]);
        let ratio = median(ra.iter().zip(rb).map(|(x, y)| x.rps / y.rps).collect());
        println!("| {a} / {b} | {ratio:.2}x |");
    }
}

/// CPU seconds (user + system) process `pid` has used so far.
fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server's /proc stat");
    // The command name may hold spaces: count fields after its closing parenthesis,
    // where field 3 (state) starts; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / clock_ticks()
}

/// CPU seconds (user + system) used by the reaped children of this process.
fn children_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to that struct.
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Runs `wrk`; returns its requests per second and the CPU seconds it used.
fn wrk(url: &str, secs: u64, conns: u64) -> (f64, f64) {
    // The servers are not reaped while they run: what the children reaped during
    // the run used is wrk's.
    let cpu0 = children_cpu_secs();
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--timeout",
            "5s",
            url,
        ])
        .output()
        .expect("run wrk");
    let cpu = children_cpu_secs() - cpu0;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {}\n{text}", out.status);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors:\n{text}");
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    (rps, cpu)
}

/// A child: serves hello on a free loopback port with 2 workers, forever.
fn serve(which: &str) {
    let announce = |addr: std::net::SocketAddr| println!("LISTEN {addr}");
    match which {
        "corun" => {
            let rt = corun::Runtime::builder()
                .workers(2)
                .build()
                .expect("runtime");
            let l = corun::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            announce(l.local_addr().expect("addr"));
            if std::env::var_os("HTTP_DEBUG").is_some() {
                let h = rt.handle().clone();
                std::thread::spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let m = h.metrics();
                    let s: Vec<_> = m
                        .workers
                        .iter()
                        .map(|w| (w.started, w.switches, w.stolen, w.sleeps))
                        .collect();
                    eprintln!("{s:?}");
                });
            }
            rt.block_on(move || http_hello::serve(l)).expect("serve");
        }
        "may_minihttp" => {
            use may_minihttp::{HttpServer, HttpService, Request, Response};
            #[derive(Clone)]
            struct Hello;
            impl HttpService for Hello {
                fn call(&mut self, _req: Request, rsp: &mut Response) -> std::io::Result<()> {
                    rsp.body("Hello, World!");
                    Ok(())
                }
            }
            may::config().set_workers(2);
            // may_minihttp binds the address itself: find a free port first.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port");
            let server = HttpServer(Hello).start(port).expect("start");
            announce(port);
            server.wait();
        }
        "corun_naive" => {
            let rt = corun::Runtime::builder()
                .workers(2)
                .build()
                .expect("runtime");
            let l = corun::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            announce(l.local_addr().expect("addr"));
            rt.block_on(move || http_naive::serve(l)).expect("serve");
        }
        "hyper" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio");
            rt.block_on(hyper_serve(announce));
        }
        other => panic!("no server {other}"),
    }
    std::thread::sleep(Duration::from_secs(3600));
}

async fn hyper_serve(announce: impl Fn(std::net::SocketAddr)) {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{service::service_fn, Request, Response};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    announce(l.local_addr().expect("addr"));
    loop {
        let (s, _) = l.accept().await.expect("accept");
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"Hello, World!",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                .await;
        });
    }
}
