//! RESP under `redis-benchmark`: corun's `examples/resp_server.rs` (the plain way:
//! a coroutine per connection, `BufReader`/`BufWriter`, the default runtime) beside
//! Debian's `redis-server`, both as child processes on free loopback ports.
//!
//!     cargo bench --bench resp
//!
//! Both servers start up front and are warmed once; then each round runs
//! `redis-benchmark -t set,get -c 50 -q` once against each in turn. The table shows
//! per command the median requests/s of each server and the median of the per-round
//! ratios.
//!
//! The example runs as it is, as its own binary: the bench builds it first with
//! `cargo build --profile bench --example resp_server` (a no-op when it is current).
//!
//! Environment: `RESP_N` (requests per command and run, default 200000),
//! `RESP_REPEAT` (rounds, default 5). Needs Debian's `redis-server` and
//! `redis-benchmark`; without them the bench says how to install them and exits.

mod common;

#[path = "../tests/support/redis.rs"]
mod redis_support;

use common::{announced, env_or, median, Killed};
use redis_support::RedisServer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SERVERS: [&str; 2] = ["corun", "redis-server"];
const COMMANDS: [&str; 2] = ["SET", "GET"];
const CLIENTS: u64 = 50;

fn main() {
    let missing: Vec<&str> = ["redis-server", "redis-benchmark"]
        .into_iter()
        .filter(|tool| Command::new(tool).arg("--version").output().is_err())
        .collect();
    if !missing.is_empty() {
        println!(
            "{} not installed: `apt-get install redis-server redis-tools`, then run `cargo bench --bench resp` again",
            missing.join(" and ")
        );
        return;
    }
    let n = env_or("RESP_N", 200_000).max(1);
    let repeat = env_or("RESP_REPEAT", 5).max(1) as usize;
    let example = build_example();
    let mut children: Vec<Killed> = Vec::new();
    let mut redis = Vec::new();
    let mut ports = Vec::new();
    for server in SERVERS {
        let port = match server {
            "corun" => {
                let (child, port) = start_corun(&example);
                children.push(Killed(child));
                port
            }
            _ => {
                let r = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
                let port = r.addr.port();
                redis.push(r);
                port
            }
        };
        ports.push(port);
    }
    // Warm-up: connections, stacks, allocator.
    for &port in &ports {
        redis_benchmark(port, (n / 10).max(1000));
    }
    // rps[server][command][round]
    let mut rps = vec![vec![Vec::new(); COMMANDS.len()]; SERVERS.len()];
    for round in 1..=repeat {
        for (s, server) in SERVERS.iter().enumerate() {
            let r = redis_benchmark(ports[s], n);
            println!(
                "  round {round}/{repeat} {server}: SET {:.0}, GET {:.0} requests/s",
                r[0], r[1]
            );
            for (c, v) in r.into_iter().enumerate() {
                rps[s][c].push(v);
            }
        }
    }
    drop(children);
    println!();
    println!("| command (redis-benchmark -c{CLIENTS} -n{n}, {repeat} rounds) | corun resp_server requests/s | redis-server requests/s | corun / redis-server |");
    println!("|---|---|---|---|");
    for (c, cmd) in COMMANDS.iter().enumerate() {
        let (ours, theirs) = (&rps[0][c], &rps[1][c]);
        let ratio = median(ours.iter().zip(theirs).map(|(a, b)| a / b).collect());
        println!(
            "| {cmd} | {:.0} | {:.0} | {ratio:.2}x |",
            median(ours.clone()),
            median(theirs.clone())
        );
    }
}

/// Builds `examples/resp_server.rs` with this bench's profile and returns its path.
fn build_example() -> PathBuf {
    // Cargo names itself in `CARGO` for what it runs.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--profile", "bench", "--example", "resp_server"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --example resp_server failed"
    );
    // The artifact message of the example names its executable.
    let json = String::from_utf8_lossy(&out.stdout);
    json.lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"name\":\"resp_server\""))
        .find_map(|l| {
            let rest = &l[l.find("\"executable\":\"")? + "\"executable\":\"".len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .expect("cargo named no resp_server executable")
}

/// Starts the example on a free port; it announces `... listening on ADDR`.
fn start_corun(example: &Path) -> (Child, u16) {
    let mut child = Command::new(example)
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start resp_server");
    let line = announced(&mut child);
    let addr: SocketAddr = line
        .parse()
        .unwrap_or_else(|_| panic!("resp_server announced {line:?}, not an address"));
    (child, addr.port())
}

/// Runs `redis-benchmark -t set,get` and returns SET's and GET's requests/s.
fn redis_benchmark(port: u16, n: u64) -> [f64; 2] {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-q"])
        .args(["-n", &n.to_string(), "-c", &CLIENTS.to_string()])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redis-benchmark failed: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // With -q each command ends on `SET: 123456.79 requests per second, p50=...`,
    // after progress lines separated by carriage returns.
    COMMANDS.map(|cmd| {
        text.split(['\r', '\n'])
            .filter(|l| l.contains("requests per second"))
            .find_map(|l| l.strip_prefix(cmd)?.strip_prefix(": "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {cmd} requests per second in:\n{text}"))
    })
}
