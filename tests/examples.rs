//! The networking examples run to completion with small sizes. `cargo test` builds
//! the examples next to the test binaries; a run that did not build them (a
//! `--test` filter) skips with the reason printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::example;

mod support;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts a server example and reads the address it announces as the last word of
/// its first line.
fn serve(cmd: &mut Command) -> (std::process::Child, String) {
    let mut server = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first.trim().rsplit(' ').next().unwrap().to_owned();
    (server, addr)
}

#[test]
fn echo_in_one_process() {
    let Some(echo) = example("echo") else { return };
    let out = run(&mut Command::new(echo));
    assert!(out.contains("round trips/s"), "{out}");
}

#[test]
fn echo_server_and_client_processes() {
    let Some(echo) = example("echo") else { return };
    let (mut server, addr) = serve(Command::new(&echo).args(["server", "127.0.0.1:0"]));
    let out = run(Command::new(&echo).args(["client", &addr, "4", "200"]));
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(out.contains("4 clients x 200 round trips"), "{out}");
}

#[test]
fn fetch_many_runs() {
    let Some(fetch) = example("fetch_many") else {
        return;
    };
    let out = run(Command::new(fetch).args(["8", "20"]));
    assert!(out.contains("8 URLs fetched concurrently"), "{out}");
    assert!(out.contains("8 URLs fetched one by one"), "{out}");
}

#[test]
fn http_hello_self_test() {
    let Some(hello) = example("http_hello") else {
        return;
    };
    let out = run(Command::new(hello).arg("--self-test"));
    assert!(out.contains("3 answers (2 pipelined)"), "{out}");
}

#[test]
fn resp_server_self_test() {
    let Some(resp) = example("resp_server") else {
        return;
    };
    let out = run(Command::new(resp).arg("--self-test"));
    assert!(
        out.contains("8 clients x 200 SET/GET answered correctly"),
        "{out}"
    );
}

#[test]
fn resp_server_answers_redis_cli() {
    let Some(resp) = example("resp_server") else {
        return;
    };
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("skipped: redis-cli is not installed (apt-get install redis-tools)");
        return;
    }
    let (mut server, addr) = serve(Command::new(&resp).arg("127.0.0.1:0"));
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let cli = |args: &[&str]| {
        run(Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args))
    };
    assert_eq!(cli(&["SET", "greeting", "hello"]).trim(), "OK");
    assert_eq!(cli(&["GET", "greeting"]).trim(), "hello");
    assert_eq!(cli(&["INCR", "n"]).trim(), "1");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Built with `--features tokio` only; it skips when redis-server is missing.
#[cfg(feature = "tokio")]
#[test]
fn redis_service_checks_every_value() {
    let Some(ex) = example("redis_service") else {
        return;
    };
    let out = run(Command::new(ex).arg("300"));
    if out.starts_with("skipped:") {
        eprintln!("SKIPPED: redis_service: {out}");
        return;
    }
    assert!(out.contains("300 logins through the redis crate"), "{out}");
    assert!(out.contains("300 logins over corun::net"), "{out}");
    assert!(out.contains("logins counted: 600"), "{out}");
}

#[test]
fn tokio_interop_runs() {
    let Some(ex) = example("tokio_interop") else {
        return;
    };
    let out = run(&mut Command::new(ex));
    assert!(
        out.contains("100 coroutines awaited 100 tokio timers"),
        "{out}"
    );
}

/// A deadline beside 64 coroutines computing 1 ms jobs on 2 workers fires on time:
/// sysmon pokes the busy worker when the timer is due, the running coroutine yields
/// at its next channel operation, and the woken ones go ahead of the ready ones.
/// Before, it fired 40 ms to 3.4 s late; the bound is generous for a loaded machine.
#[test]
fn a_deadline_fires_on_time_while_every_worker_computes() {
    let Some(deadline) = example("deadline") else {
        return;
    };
    let out = run(Command::new(deadline).args(["3", "--max-late", "100"]));
    assert!(out.contains("worst of 3"), "{out}");
}
