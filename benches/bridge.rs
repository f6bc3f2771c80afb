//! The tokio bridge (`corun::await_future`, feature `tokio`) against corun's own
//! sockets, request by request.
//!
//!     cargo bench --features tokio --bench bridge
//!
//! **HTTP.** One coroutine makes requests one after another on one keep-alive
//! connection to a small corun HTTP/1.1 server in a child process of this binary:
//! with hyper 1.x's client through the bridge (one `await_future` per request, the
//! connection future driven inside it, not `tokio::spawn`ed), and with a tiny
//! blocking HTTP/1.1 client on `corun::net`. Reported: microseconds per request of
//! each, and the median of the per-round ratios bridge / corun::net.
//!
//! **Redis.** Debian's `redis-server` on a free loopback port; 50 coroutines with a
//! connection each (as `redis-benchmark -c 50`) run SETs, then GETs: through the
//! `redis` crate's tokio API (a multiplexed connection each, its driver spawned on
//! the bridge's tokio runtime) and through a blocking RESP client on `corun::net`;
//! `redis-benchmark -t set,get -c 50` gives redis's own figure. Reported: requests/s
//! of each, and the median per-round ratios to redis-benchmark.
//!
//! The variants alternate round by round, so a drift of the machine hits all.
//! Environment: `BRIDGE_HTTP_N` (requests per variant and round, default 20000),
//! `BRIDGE_REDIS_N` (requests per command, variant and round, default 100000),
//! `BRIDGE_REPEAT` (rounds, default 5). Without `redis-server`/`redis-benchmark` the
//! Redis part says how to install them and is skipped.

mod common;

#[path = "../tests/support/redis.rs"]
mod redis_support;

use bytes::Bytes;
use common::{announced, env_or, median, Killed};
use http_body_util::{BodyExt, Empty};
use redis::AsyncCommands;
use redis_support::{RedisServer, Resp};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

const CHILD_ENV: &str = "BRIDGE_HTTP_SERVER";
const CLIENTS: usize = 50;

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return serve_http();
    }
    let repeat = env_or("BRIDGE_REPEAT", 5).max(1) as usize;
    http(env_or("BRIDGE_HTTP_N", 20_000).max(1), repeat);
    redis(
        env_or("BRIDGE_REDIS_N", 100_000).max(CLIENTS as u64),
        repeat,
    );
}

// ---- HTTP ----

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";

/// The child: a corun HTTP/1.1 server answering `hello` to every request.
fn serve_http() {
    let l = corun::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("listening on {}", l.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    for s in l.incoming() {
        let Ok(s) = s else { continue };
        corun::go!(move || {
            s.set_nodelay(true).ok();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = BufWriter::new(s);
            let mut line = String::new();
            loop {
                // A request without a body: lines up to the empty one.
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                if w.write_all(HELLO).is_err() {
                    return;
                }
                // Answer every request already read before flushing once.
                if r.buffer().is_empty() && w.flush().is_err() {
                    return;
                }
            }
        });
    }
}

fn http(n: u64, repeat: usize) {
    let me = std::env::current_exe().expect("own path");
    let mut child = Command::new(me)
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server child");
    let addr: SocketAddr = announced(&mut child).parse().expect("an address");
    let _child = Killed(child);
    // Warm-up: both clients, the bridge's tokio runtime.
    http_via_bridge(addr, n / 10 + 1);
    http_via_corun_net(addr, n / 10 + 1);
    let (mut bridge, mut net, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=repeat {
        let b = http_via_bridge(addr, n);
        let c = http_via_corun_net(addr, n);
        println!("  round {round}/{repeat}: hyper via the bridge {b:.1} us/request, corun::net {c:.1} us/request");
        bridge.push(b);
        net.push(c);
        ratios.push(b / c);
    }
    println!();
    println!(
        "| HTTP/1.1 keep-alive, one connection ({n} requests, {repeat} rounds) | us/request |"
    );
    println!("|---|---|");
    println!(
        "| hyper client via corun::await_future (tokio bridge) | {:.1} |",
        median(bridge)
    );
    println!(
        "| tiny blocking client on corun::net | {:.1} |",
        median(net)
    );
    println!(
        "| bridge / corun::net (median of per-round ratios) | {:.2}x |",
        median(ratios)
    );
    println!();
}

/// hyper's HTTP/1.1 client from a coroutine: one `await_future` per request, which
/// also drives the connection. Microseconds per request.
fn http_via_bridge(addr: SocketAddr, n: u64) -> f64 {
    corun::go!(move || {
        let stream = corun::await_future(tokio::net::TcpStream::connect(addr)).expect("connect");
        stream.set_nodelay(true).unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) =
            corun::await_future(hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io))
                .expect("handshake");
        let mut conn = std::pin::pin!(conn);
        let t0 = Instant::now();
        for _ in 0..n {
            let req = hyper::Request::get("/")
                .header("host", "bench")
                .body(Empty::new())
                .unwrap();
            let body = corun::await_future(async {
                tokio::select! {
                    r = async {
                        let resp = sender.send_request(req).await?;
                        resp.into_body().collect().await.map(|b| b.to_bytes())
                    } => r,
                    r = conn.as_mut() => panic!("the connection ended: {r:?}"),
                }
            })
            .expect("a response");
            assert_eq!(&body[..], b"hello");
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    })
    .join()
    .unwrap()
}

/// The same exchange over corun::net, blocking style. Microseconds per request.
fn http_via_corun_net(addr: SocketAddr, n: u64) -> f64 {
    corun::go!(move || {
        let s = corun::net::TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        let mut body = Vec::new();
        let t0 = Instant::now();
        for _ in 0..n {
            w.write_all(b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n")
                .unwrap();
            let mut len = 0;
            loop {
                line.clear();
                assert!(r.read_line(&mut line).unwrap() > 0, "connection closed");
                if line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                }
            }
            body.resize(len, 0);
            r.read_exact(&mut body).unwrap();
            assert_eq!(&body[..], b"hello");
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    })
    .join()
    .unwrap()
}

// ---- Redis ----

fn redis(n: u64, repeat: usize) {
    if Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("redis-benchmark is not installed: `apt-get install redis-server redis-tools`; the Redis part is skipped");
        return;
    }
    let server = match RedisServer::start() {
        Ok(s) => s,
        Err(why) => {
            println!("the Redis part is skipped: {why}");
            return;
        }
    };
    let addr = server.addr;
    let per = (n as usize / CLIENTS).max(1);
    let client = redis::Client::open(server.url()).unwrap();
    let crate_conns: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = client.clone();
            corun::go!(move || corun::await_future(client.get_multiplexed_async_connection()))
                .join()
                .unwrap()
                .expect("connect")
        })
        .collect();
    let resp_conns: Vec<_> = (0..CLIENTS)
        .map(|_| Resp::connect(addr).expect("connect"))
        .collect();
    let mut resp_conns: Vec<Option<Resp>> = resp_conns.into_iter().map(Some).collect();
    // Warm-up.
    redis_via_bridge(&crate_conns, per / 10 + 1);
    redis_via_corun_net(&mut resp_conns, per / 10 + 1);
    redis_benchmark(addr, n / 10 + 1);
    // [variant][command][round]: requests/s
    let names = [
        "redis crate via the bridge",
        "RESP client on corun::net",
        "redis-benchmark",
    ];
    let mut rps = vec![[Vec::new(), Vec::new()]; 3];
    for round in 1..=repeat {
        let all = [
            redis_via_bridge(&crate_conns, per),
            redis_via_corun_net(&mut resp_conns, per),
            redis_benchmark(addr, n),
        ];
        for (v, r) in all.iter().enumerate() {
            println!(
                "  round {round}/{repeat} {}: SET {:.0}/s, GET {:.0}/s",
                names[v], r[0], r[1]
            );
            rps[v][0].push(r[0]);
            rps[v][1].push(r[1]);
        }
    }
    drop(crate_conns);
    println!();
    println!("| {CLIENTS} clients, {n} requests per command, {repeat} rounds | SET/s | GET/s | SET vs redis-benchmark | GET vs redis-benchmark |");
    println!("|---|---|---|---|---|");
    for v in 0..3 {
        let ratio = |c: usize| {
            median(
                rps[v][c]
                    .iter()
                    .zip(&rps[2][c])
                    .map(|(a, b)| a / b)
                    .collect(),
            )
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.2}x |",
            names[v],
            median(rps[v][0].clone()),
            median(rps[v][1].clone()),
            ratio(0),
            ratio(1)
        );
    }
}

/// `per` SETs then `per` GETs from each of the coroutines, one connection each,
/// through the redis crate and the bridge: SET/s and GET/s.
fn redis_via_bridge(conns: &[redis::aio::MultiplexedConnection], per: usize) -> [f64; 2] {
    let phase = |get: bool| {
        let t0 = Instant::now();
        let hs: Vec<_> = conns
            .iter()
            .enumerate()
            .map(|(c, conn)| {
                let mut conn = conn.clone();
                corun::go!(move || {
                    let key = format!("bridge:{c}");
                    for _ in 0..per {
                        if get {
                            let v: String =
                                corun::await_future(async { conn.get(&key).await }).expect("GET");
                            assert_eq!(v, "xxx");
                        } else {
                            corun::await_future(async { conn.set::<_, _, ()>(&key, "xxx").await })
                                .expect("SET");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        (conns.len() * per) as f64 / t0.elapsed().as_secs_f64()
    };
    [phase(false), phase(true)]
}

/// The same through the blocking RESP client on corun::net.
fn redis_via_corun_net(conns: &mut [Option<Resp>], per: usize) -> [f64; 2] {
    let mut phase = |get: bool| {
        let t0 = Instant::now();
        let hs: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(c, conn)| {
                let mut conn = conn.take().expect("a connection");
                corun::go!(move || {
                    let key = format!("resp:{c}");
                    for _ in 0..per {
                        if get {
                            assert_eq!(conn.get(&key).expect("GET").as_deref(), Some("xxx"));
                        } else {
                            conn.set(&key, "xxx").expect("SET");
                        }
                    }
                    conn
                })
            })
            .collect();
        for (slot, h) in conns.iter_mut().zip(hs) {
            *slot = Some(h.join().unwrap());
        }
        (conns.len() * per) as f64 / t0.elapsed().as_secs_f64()
    };
    [phase(false), phase(true)]
}

/// `redis-benchmark -t set,get -c 50 -n N -q`: SET/s and GET/s.
fn redis_benchmark(addr: SocketAddr, n: u64) -> [f64; 2] {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["-t", "set,get", "-q"])
        .args(["-n", &n.to_string(), "-c", &CLIENTS.to_string()])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-benchmark failed: {text}");
    // With -q each command ends on `SET: 123456.79 requests per second, ...`,
    // after progress lines separated by carriage returns.
    ["SET", "GET"].map(|cmd| {
        text.split(['\r', '\n'])
            .filter(|l| l.contains("requests per second"))
            .find_map(|l| l.strip_prefix(cmd)?.strip_prefix(": "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {cmd} requests per second in:\n{text}"))
    })
}
