//! Deadlock detection: reported (message, exit status 2) when every coroutine is
//! provably asleep for good, and not reported while something could still wake one.
//!
//! A plain `main` (no libtest, whose threads corun could not account for): each
//! scenario runs in a child process of this binary, `DEADLOCK_CHILD=<scenario>`.

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    if let Ok(which) = std::env::var("DEADLOCK_CHILD") {
        return child(&which);
    }
    if std::env::var_os("CORUN_SANITIZER").is_some() {
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
                .env("DEADLOCK_CHILD", name)
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
        .env("DEADLOCK_CHILD", "warn_mode_reports_and_keeps_waiting")
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

/// Runs the child, killing it after `limit` (a missed report would otherwise leave
/// it waiting forever); its output so far is returned either way.
fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let killer = std::thread::spawn(move || {
        let t0 = Instant::now();
        while !d.load(std::sync::atomic::Ordering::SeqCst) {
            if t0.elapsed() > limit {
                // SAFETY: kill(2) on our own child's pid, which we have not reaped yet
                // (`done` is set only after wait_with_output returns).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    killer.join().unwrap();
    out
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
