//! What the integration tests share: running one of their own helper tests in a
//! child process, waiting (bounded) for a condition, and a few environment checks.
//!
//! Each test binary compiles this module on its own (`mod support;`, or
//! `#[path = "../support/mod.rs"] mod support;` from a directory test), and none
//! uses all of it.
//!
//! A test that must watch a process die, or change process-wide state (limits,
//! environment variables), re-runs its own test binary filtered to one `#[ignore]`d
//! helper test, with [`CHILD_ENV`] naming that helper; the helper does nothing
//! without it:
//!
//! ```ignore
//! #[test]
//! #[ignore = "helper: run in a child process by the_test"]
//! fn child_helper() {
//!     if !support::is_child("child_helper") {
//!         return;
//!     }
//!     // ...
//!     support::child_done();
//! }
//!
//! #[test]
//! fn the_test() {
//!     let out = support::run_child("child_helper");
//!     support::assert_child_done(&out);
//! }
//! ```

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---- child processes ----

/// Set in a child process: the name of the helper test it runs (or, for the few
/// tests that pass something else, that value; see [`child_env`]).
pub const CHILD_ENV: &str = "CORUN_TEST_CHILD";

/// Printed by a helper that ran to its end ([`child_done`]).
pub const CHILD_DONE: &str = "CORUN-CHILD-DONE";

/// How long a child may run before it is killed, unless [`ChildTest::limit`] says
/// otherwise.
pub const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// True when this process is the child meant to run helper test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// The value of [`CHILD_ENV`]: `Some` only in a child process.
pub fn child_env() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Prints [`CHILD_DONE`] on a line of its own: the helper ran to its end.
pub fn child_done() {
    println!("\n{CHILD_DONE}");
}

/// One helper test of this binary, to run in a child process:
/// `<this test binary> --exact NAME --include-ignored --nocapture --test-threads=1`
/// with `CORUN_TEST_CHILD=NAME` and `RUST_BACKTRACE=0`, killed after [`CHILD_LIMIT`].
pub struct ChildTest {
    cmd: Command,
    limit: Duration,
}

impl ChildTest {
    pub fn new(name: &str) -> ChildTest {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.args([
            "--exact",
            name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0");
        ChildTest {
            cmd,
            limit: CHILD_LIMIT,
        }
    }

    /// Sets an environment variable of the child (also [`CHILD_ENV`], to pass the
    /// helper something other than its name).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ChildTest {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable the child would inherit.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> ChildTest {
        self.cmd.env_remove(key);
        self
    }

    /// Kills the child after `limit` instead of [`CHILD_LIMIT`].
    pub fn limit(mut self, limit: Duration) -> ChildTest {
        self.limit = limit;
        self
    }

    /// Starts the child with its stdout and stderr piped; the caller waits for it
    /// (no time limit applies).
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the test binary as a child")
    }

    /// Runs the child to its end, or kills it once its time limit has passed; its
    /// output either way.
    pub fn output(mut self) -> Output {
        output_within(&mut self.cmd, self.limit)
    }
}

/// Runs helper test `name` in a child process ([`ChildTest`] with its defaults).
pub fn run_child(name: &str) -> Output {
    ChildTest::new(name).output()
}

/// Runs `cmd` with its stdout and stderr piped, killing it (SIGKILL) if it has not
/// ended after `limit`: a child that hangs fails its test instead of stalling the
/// suite. Its output so far is returned either way.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running a child process");
    // Read both pipes while waiting, so a talkative child never blocks on a full one.
    fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let ended = wait_until(limit, || {
        child.try_wait().expect("waiting for the child").is_some()
    });
    if !ended {
        eprintln!("support: killing the child {cmd:?}: still running after {limit:?}");
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for the child");
    Output {
        status,
        stdout: stdout.join().expect("reading the child's stdout"),
        stderr: stderr.join().expect("reading the child's stderr"),
    }
}

/// Asserts that the child exited successfully after printing [`CHILD_DONE`].
pub fn assert_child_done(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(CHILD_DONE),
        "child failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

// ---- waiting with a deadline ----

/// Polls `f` until it gives a value, sleeping a millisecond between tries, for at
/// most `limit`; `None` if it never did.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls `cond` until it holds, for at most `limit`: whether it did.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, || cond().then_some(())).is_some()
}

/// As [`wait_until`], panicking with "timed out waiting for {what}" if `cond` does
/// not hold within `limit`.
pub fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) {
    assert!(wait_until(limit, cond), "timed out waiting for {what}");
}

/// As [`poll`], panicking with "timed out waiting for {what}" if `f` gives no value
/// within `limit`.
pub fn eventually<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(limit, f).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Waits (up to 10 s) until `rt` counts no live coroutine, since a joiner may wake
/// before the worker has finished its bookkeeping; the metrics last read.
pub fn wait_until_idle(rt: &corun::Runtime) -> corun::Metrics {
    let mut m = rt.metrics();
    wait_until(Duration::from_secs(10), || {
        m = rt.metrics();
        m.live == 0
    });
    m
}

// ---- the environment ----

/// An AddressSanitizer build (`.ci/sanitize` sets `CORUN_SANITIZER=address`).
pub fn under_asan() -> bool {
    std::env::var("CORUN_SANITIZER").as_deref() == Ok("address")
}

/// Any sanitizer build (`.ci/sanitize` sets `CORUN_SANITIZER`).
pub fn under_sanitizer() -> bool {
    std::env::var_os("CORUN_SANITIZER").is_some()
}

/// A warnings route that collects every line, and the lines collected so far.
pub fn warning_log() -> (corun::Warnings, std::sync::Arc<Mutex<Vec<String>>>) {
    let lines = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let log = lines.clone();
    let route = corun::Warnings::Callback(std::sync::Arc::new(move |l: &str| {
        log.lock().unwrap().push(l.to_owned())
    }));
    (route, lines)
}

/// Serializes the tests of one binary that measure time or CPU use; a test that
/// panicked while holding it does not poison it for the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The example `name` as `cargo test` builds it next to the test binaries, if it
/// was built (a `--test` filter builds none); prints why the caller skips if not.
pub fn example(name: &str) -> Option<PathBuf> {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent()?.parent()?.join("examples").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} was not built (run `cargo test` without a target filter, \
             or `cargo build --release --examples`)",
            p.display()
        );
        None
    }
}
