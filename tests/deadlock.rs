//! Deadlock detection: reported (message, exit status 2) when every coroutine is
//! provably asleep for good, and not reported while something could still wake one.
//!
//! A plain `main` (no libtest, whose threads corun could not account for): each
//! scenario runs in a child process of this binary, `CORUN_TEST_CHILD=<scenario>`
//! (`support::CHILD_ENV`).

use std::process::Command;
use std::time::{Duration, Instant};
use support::{output_within, CHILD_ENV};

mod support;

fn main() {
    if let Some(which) = support::child_env() {
        return child(&which);
    }
    if support::under_sanitizer() {
        // ASan's background thread (for its RSS limit) is a thread corun cannot
        // account for, so no deadlock can be proven: the scenarios would wait forever.
        println!("SKIPPED under a sanitizer: its own thread makes every deadlock unprovable");
        return;
    }
    let mut failed = 0;
    for (name, check) in [
        (
            "channel_deadlock_exits_2",
            check_reported as fn(&str, &std::process::Output) -> Result<(), String>,
        ),
        ("mutex_deadlock_exits_2", check_reported),
        ("dedicated_deadlock_exits_2", check_reported),
        (
            "no_report_while_a_thread_sleeps_holding_the_sender",
            check_not_reported,
        ),
        ("no_report_while_a_timer_is_pending", check_not_reported),
        (
            "no_report_while_a_blocking_call_is_pending",
            check_not_reported,
        ),
        ("sigquit_prints_the_dump", check_sigquit_dump),
    ] {
        let t0 = Instant::now();
        let out = output_within(
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, name)
                .env("CORUN_DUMP_ON_SIGQUIT", "1")
                .env_remove("CORUN_DEADLOCK"),
            Duration::from_secs(120),
        );
        match check(name, &out) {
            Ok(()) => println!("test {name} ... ok ({:?})", t0.elapsed()),
            Err(e) => {
                failed += 1;
                println!(
                    "test {name} ... FAILED: {e}\n--- status {:?}\n--- stdout\n{}\n--- stderr\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    if let Err(e) = warn_mode_reports_and_keeps_waiting() {
        failed += 1;
        println!("test warn_mode_reports_and_keeps_waiting ... FAILED: {e}");
    } else {
        println!("test warn_mode_reports_and_keeps_waiting ... ok");
    }
    assert_eq!(failed, 0, "{failed} deadlock scenario(s) failed");
}

/// In warn mode the report comes out and the process keeps running (the parent
/// kills it after checking).
fn warn_mode_reports_and_keeps_waiting() -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "warn_mode_reports_and_keeps_waiting")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(HEADLINE) {
                let _ = tx.send(());
            }
        }
    });
    let seen = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    std::thread::sleep(Duration::from_millis(300));
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    match (seen, alive) {
        (true, true) => Ok(()),
        (false, _) => Err("no report within 60 s".into()),
        (true, false) => Err("the process ended after the warning".into()),
    }
}

const HEADLINE: &str = "fatal error: all coroutines are asleep - deadlock!";

fn check_reported(name: &str, out: &std::process::Output) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!("exit status {:?}, want 2", out.status.code()));
    }
    if !err.contains(HEADLINE) {
        return Err("no deadlock report".into());
    }
    // The dump follows, naming what each coroutine waits on.
    let want = if name.starts_with("mutex") {
        "[sync.Mutex.Lock, "
    } else {
        "[chan receive, "
    };
    if !err.contains("\ncoroutine ") || !err.contains(want) {
        return Err(format!("the report has no dump naming {want:?}"));
    }
    if String::from_utf8_lossy(&out.stdout).contains("unreachable") {
        return Err("the program went on".into());
    }
    Ok(())
}

fn check_sigquit_dump(_: &str, out: &std::process::Output) -> Result<(), String> {
    check_not_reported("", out)?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.contains("SIGQUIT: corun dump") {
        return Err("no dump on SIGQUIT".into());
    }
    if !err.contains("\"parked-one\" [chan receive, ") {
        return Err("the dump does not show the parked coroutine".into());
    }
    Ok(())
}

fn check_not_reported(_: &str, out: &std::process::Output) -> Result<(), String> {
    if !out.status.success() {
        return Err(format!("exit status {:?}", out.status.code()));
    }
    if String::from_utf8_lossy(&out.stderr).contains(HEADLINE) {
        return Err("reported a deadlock that was not one".into());
    }
    if !String::from_utf8_lossy(&out.stdout).contains("done") {
        return Err("did not finish".into());
    }
    Ok(())
}

fn child(which: &str) {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    match which {
        "channel_deadlock_exits_2" => {
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let h = rt.spawn(move || rx.recv());
            // The main thread keeps `tx` and waits for the coroutine: nobody sends.
            let _ = h.join();
            drop(tx);
            println!("unreachable");
        }
        "dedicated_deadlock_exits_2" => {
            // A coroutine on a thread of its own counts like any other.
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let h = corun::Builder::new()
                .dedicated_thread()
                .spawn_on(rt.handle(), move || rx.recv())
                .unwrap();
            let _ = h.join();
            drop(tx);
            println!("unreachable");
        }
        "mutex_deadlock_exits_2" => {
            let a = std::sync::Arc::new(corun::sync::Mutex::new(()));
            let b = std::sync::Arc::new(corun::sync::Mutex::new(()));
            let (a2, b2) = (a.clone(), b.clone());
            let (tx, rx) = corun::chan::bounded::<()>(0);
            let (tx2, rx2) = corun::chan::bounded::<()>(0);
            let h1 = rt.spawn(move || {
                let _ga = a.lock();
                tx.send(()).unwrap();
                let _gb = b.lock();
            });
            let h2 = rt.spawn(move || {
                let _gb = b2.lock();
                rx.recv().unwrap();
                tx2.send(()).unwrap();
                let _ga = a2.lock();
            });
            let _ = rx2.recv();
            let _ = h1.join();
            let _ = h2.join();
            println!("unreachable");
        }
        "warn_mode_reports_and_keeps_waiting" => {
            let rt = corun::Runtime::builder()
                .workers(2)
                .deadlock(corun::Deadlock::Warn)
                .build()
                .unwrap();
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let h = rt.spawn(move || rx.recv());
            let _ = h.join(); // the parent kills us once the report is out
            drop(tx);
            println!("unreachable");
        }
        "no_report_while_a_thread_sleeps_holding_the_sender" => {
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let h = rt.spawn(move || rx.recv().unwrap());
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                tx.send(1).unwrap();
            });
            assert_eq!(h.join().unwrap(), 1);
            t.join().unwrap();
            println!("done");
        }
        "no_report_while_a_timer_is_pending" => {
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let waiter = rt.spawn(move || rx.recv().unwrap());
            let sleeper = rt.spawn(move || {
                corun::sleep(Duration::from_millis(500));
                tx.send(2).unwrap();
            });
            assert_eq!(waiter.join().unwrap(), 2);
            sleeper.join().unwrap();
            println!("done");
        }
        "no_report_while_a_blocking_call_is_pending" => {
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let waiter = rt.spawn(move || rx.recv().unwrap());
            let caller = rt.spawn(move || {
                corun::blocking(|| std::thread::sleep(Duration::from_millis(500)));
                tx.send(3).unwrap();
            });
            assert_eq!(waiter.join().unwrap(), 3);
            caller.join().unwrap();
            println!("done");
        }
        "sigquit_prints_the_dump" => {
            let (tx, rx) = corun::chan::bounded::<u32>(0);
            let h = corun::Builder::new()
                .name("parked-one")
                .spawn_on(rt.handle(), move || rx.recv().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: raise(3) on our own process; the handler only writes a pipe.
            unsafe { libc::raise(libc::SIGQUIT) };
            std::thread::sleep(Duration::from_millis(500));
            tx.send(9).unwrap();
            assert_eq!(h.join().unwrap(), 9);
            println!("done");
        }
        other => panic!("no scenario {other}"),
    }
}
