//! HTTP hello under `wrk`: corun's `examples/http_hello.rs` beside `may_minihttp`'s
//! hello server and a `hyper` hello server on tokio, each in a child process of this
//! binary with 2 workers, measured one after the other in one run.
//!
//!     cargo bench --bench http
//!
//! Environment: `HTTP_SECS` (seconds per `wrk` run, default 10), `HTTP_REPEAT` (runs
//! per server, default 3; the table shows the median), `HTTP_CONNS` (default 100).
//! Needs Debian's `wrk` (`apt-get install wrk`); without it the bench says so and
//! exits.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "../examples/http_hello.rs"]
#[allow(dead_code)]
mod http_hello;

const CHILD_ENV: &str = "HTTP_CHILD";
const SERVERS: [&str; 3] = ["corun", "may_minihttp", "hyper"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let repeat = env_or("HTTP_REPEAT", 3).max(1);
    let conns = env_or("HTTP_CONNS", 100);
    let me = std::env::current_exe().expect("own path");
    let mut medians = Vec::new();
    for server in SERVERS {
        let mut child = Command::new(&me)
            .env(CHILD_ENV, server)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server child");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("server address");
        let addr = line.trim().trim_start_matches("LISTEN ").to_string();
        let url = format!("http://{addr}/");
        // Warm-up: connections, stacks, caches.
        wrk(&url, 1, conns);
        let mut runs: Vec<f64> = (0..repeat)
            .map(|i| {
                let rps = wrk(&url, secs, conns);
                println!("  {server} run {}/{repeat}: {rps:.0} requests/s", i + 1);
                rps
            })
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        runs.sort_by(f64::total_cmp);
        medians.push((server, runs[runs.len() / 2]));
    }
    let best_peer = medians[1..].iter().map(|m| m.1).fold(0.0, f64::max);
    println!();
    println!("| server (wrk -t2 -c{conns} -d{secs}s) | requests/s | / best peer |");
    println!("|---|---|---|");
    for (server, rps) in &medians {
        println!("| {server} | {rps:.0} | {:.2}x |", rps / best_peer);
    }
}

/// Runs `wrk` and returns its requests per second.
fn wrk(url: &str, secs: u64, conns: u64) -> f64 {
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
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors:\n{text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
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
