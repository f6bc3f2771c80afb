//! Faults: panics, bad configuration, stack overflow and stack mapping failures.
//!
//! The tests that must watch a process die or lower its limits run an `#[ignore]`d
//! helper test in a child process (`support::run_child`).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::{child_done, is_child, run_child, wait_until_idle, ChildTest, CHILD_DONE};

mod support;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---- panics ----

#[test]
fn a_panic_is_isolated_to_its_coroutine() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    // A coroutine parked across the panic must still complete afterwards.
    let go = Arc::new(AtomicBool::new(false));
    let go2 = go.clone();
    let survivor = rt.spawn(move || {
        while !go2.load(Ordering::Acquire) {
            corun::park();
        }
        "survived"
    });
    let str_panic = rt.spawn(|| -> u32 {
        corun::yield_now();
        panic!("static boom");
    });
    let string_panic = rt.spawn(|| -> u32 {
        let n = 7;
        panic!("formatted boom {n}");
    });
    let e = str_panic.join().unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"static boom"));
    let e = string_panic.join().unwrap_err();
    assert_eq!(
        e.downcast_ref::<String>().map(String::as_str),
        Some("formatted boom 7")
    );
    // Custom payloads come back as they were.
    let custom = rt.spawn(|| std::panic::panic_any(42u64));
    assert_eq!(custom.join().unwrap_err().downcast_ref::<u64>(), Some(&42));

    // The worker goes on: new coroutines run, the parked one completes.
    let after: Vec<_> = (0..100u64).map(|i| rt.spawn(move || i)).collect();
    assert_eq!(
        after.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
        4950
    );
    go.store(true, Ordering::Release);
    survivor.coroutine().unpark();
    assert_eq!(survivor.join().unwrap(), "survived");
    let m = wait_until_idle(&rt);
    assert_eq!(m.live, 0);
    assert_eq!(m.workers[0].started, m.workers[0].finished);
}

#[test]
fn many_panics_do_not_leak_or_stop_the_runtime() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    const N: u32 = 300;
    let handles: Vec<_> = (0..N)
        .map(|i| {
            rt.spawn(move || {
                if i % 2 == 0 {
                    std::panic::panic_any(i);
                }
                i
            })
        })
        .collect();
    let mut ok = 0u64;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(v) => {
                assert_eq!(v as usize, i);
                ok += u64::from(v);
            }
            Err(e) => {
                assert_eq!(i % 2, 0);
                assert_eq!(e.downcast_ref::<u32>(), Some(&(i as u32)));
            }
        }
    }
    assert_eq!(ok, (0..N as u64).filter(|i| i % 2 == 1).sum::<u64>());
    assert_eq!(wait_until_idle(&rt).live, 0);
}

#[test]
#[ignore = "helper: run in a child process by panic_message_names_the_coroutine"]
fn child_named_panic() {
    if !is_child("child_named_panic") {
        return;
    }
    let h = corun::Builder::new()
        .name("the-name")
        .spawn(|| -> () { panic!("kaboom-7") })
        .unwrap();
    assert!(h.join().is_err());
    let unnamed = corun::spawn(|| -> () { panic!("anon-kaboom") });
    let id = unnamed.coroutine().id();
    assert!(unnamed.join().is_err());
    println!("\nUNNAMED-ID={}", id.as_u64());
    child_done();
}

#[test]
fn panic_message_names_the_coroutine() {
    let out = run_child("child_named_panic");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains(CHILD_DONE), "helper did not run: {stdout}");
    let line = stderr
        .lines()
        .find(|l| l.contains("coroutine 'the-name'"))
        .unwrap_or_else(|| panic!("no line names the coroutine in stderr:\n{stderr}"));
    assert!(line.contains("panicked"), "{line}");
    assert!(stderr.contains("kaboom-7"), "{stderr}");
    // An unnamed coroutine is named by its id.
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("UNNAMED-ID="))
        .expect("child printed the id");
    assert!(
        stderr.contains(&format!("coroutine #{id}")),
        "no `coroutine #{id}` in stderr:\n{stderr}"
    );
    assert!(stderr.contains("anon-kaboom"), "{stderr}");
}

// ---- bad configuration ----

#[test]
fn bad_configuration_is_an_error() {
    let e = corun::Runtime::builder().workers(0).build().err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("worker"), "{e}");

    let e = corun::Runtime::builder()
        .stack_size(100)
        .build()
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("stack"), "{e}");

    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let e = corun::Builder::new()
        .stack_size(10)
        .spawn(move || r.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let r = ran.clone();
    let e = corun::Builder::new()
        .stack_size(0x10)
        .spawn_on(rt.handle(), move || r.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = corun::scope(|s| {
        s.spawn_with(corun::Builder::new().stack_size(1), || ())
            .err()
            .unwrap()
    });
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(!ran.load(Ordering::SeqCst));

    // A valid small custom stack works.
    let h = corun::Builder::new()
        .stack_size(64 * 1024)
        .spawn_on(rt.handle(), || 5)
        .unwrap();
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
#[ignore = "helper: run in a child process by a_bad_corun_workers_variable_is_an_error"]
fn child_bad_corun_workers() {
    if !is_child("child_bad_corun_workers") {
        return;
    }
    let e = corun::Runtime::builder()
        .build()
        .err()
        .expect("build must fail");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("CORUN_WORKERS"), "{e}");
    // An explicit count wins over the variable.
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.handle().workers(), 1);
    child_done();
}

#[test]
fn a_bad_corun_workers_variable_is_an_error() {
    for bad in ["0", "lots", "-2"] {
        let out = ChildTest::new("child_bad_corun_workers")
            .env("CORUN_WORKERS", bad)
            .output();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "CORUN_WORKERS={bad}:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains(CHILD_DONE), "helper did not run: {stdout}");
    }
}

#[test]
fn spawning_on_a_dropped_runtime_is_an_error() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let handle = rt.handle().clone();
    assert_eq!(handle.workers(), 2);
    drop(rt);
    let e = corun::Builder::new().spawn_on(&handle, || 1).unwrap_err();
    assert!(e.to_string().contains("shutting down"), "{e}");
}

#[test]
fn block_on_from_its_own_coroutine_panics_instead_of_deadlocking() {
    let rt = Arc::new(corun::Runtime::builder().workers(1).build().unwrap());
    let rt2 = rt.clone();
    let h = rt.spawn(move || rt2.block_on(|| 1));
    let e = h.join().unwrap_err();
    let msg = e
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("block_on"), "{msg}");
}

// ---- stack overflow ----

fn recurse(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth as u8; 1024]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(std::hint::black_box(depth + 1));
    std::hint::black_box(below) + u64::from(buf[(depth % 1024) as usize])
}

#[test]
#[ignore = "helper: run in a child process by stack_overflow_is_reported_and_aborts"]
fn child_stack_overflow() {
    if !is_child("child_stack_overflow") {
        return;
    }
    let rt = corun::Runtime::builder()
        .workers(2)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    // Other coroutines are alive; the fault must be pinned on "deep".
    let bystanders: Vec<_> = (0..10).map(|i| rt.spawn(move || i)).collect();
    for b in bystanders {
        b.join().unwrap();
    }
    let h = corun::Builder::new()
        .name("deep")
        .spawn_on(rt.handle(), || recurse(0))
        .unwrap();
    let r = h.join();
    // Not reached: the process aborts.
    println!("join returned: {:?}", r.is_ok());
    child_done();
}

#[test]
fn stack_overflow_is_reported_and_aborts() {
    let out = run_child("child_stack_overflow");
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(!text(&out.stdout).contains(CHILD_DONE));
    let line = stderr
        .lines()
        .find(|l| l.contains("overflowed its stack of"))
        .unwrap_or_else(|| panic!("no overflow report in stderr:\n{stderr}"));
    assert!(line.contains("deep"), "{line}");
    assert!(line.contains("64 KiB"), "{line}");
    // And how to fix it.
    assert!(stderr.contains("Builder::stack_size"), "{stderr}");
    assert!(stderr.contains("CORUN_STACK_STATS=1"), "{stderr}");
}

#[test]
#[ignore = "helper: run in a child process by unnamed_stack_overflow_names_the_id"]
fn child_unnamed_overflow() {
    if !is_child("child_unnamed_overflow") {
        return;
    }
    let h = corun::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            // Printed before the overflow, which ends the process.
            println!("\nID={}", corun::current().id().as_u64());
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            recurse(0)
        })
        .unwrap();
    let _ = h.join();
    child_done();
}

#[test]
fn unnamed_stack_overflow_names_the_id() {
    let out = run_child("child_unnamed_overflow");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "stderr:\n{stderr}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .unwrap_or_else(|| panic!("no id in stdout:\n{stdout}"));
    assert!(
        stderr.contains(&format!("coroutine #{id} overflowed its stack of 128 KiB")),
        "stderr:\n{stderr}"
    );
}

// ---- a stack that cannot be mapped ----

fn address_space_in_use() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

#[test]
#[ignore = "helper: run in a child process by unmappable_stacks_fail_only_their_coroutines"]
fn child_mmap_failure() {
    if !is_child("child_mmap_failure") {
        return;
    }
    const HUGE: usize = 512 << 20;
    const SMALL: usize = 64 << 10;
    let rt = corun::Runtime::builder()
        .workers(2)
        .stack_size(HUGE)
        .build()
        .unwrap();
    // Warm up both workers (thread-local allocator arenas) on small stacks.
    let warm: Vec<_> = (0..64)
        .map(|i| {
            corun::Builder::new()
                .stack_size(SMALL)
                .spawn_on(rt.handle(), move || {
                    corun::yield_now();
                    vec![i; 1000].len()
                })
                .unwrap()
        })
        .collect();
    for w in warm {
        assert_eq!(w.join().unwrap(), 1000);
    }
    // Leave room for small mappings, none for a 512 MiB stack.
    let limit = address_space_in_use() + (256 << 20);
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);

    let ran = Arc::new(AtomicUsize::new(0));
    let failing: Vec<_> = (0..5)
        .map(|_| {
            let ran = ran.clone();
            rt.spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for h in failing {
        let e = h.join().unwrap_err();
        let se = e
            .downcast_ref::<corun::SpawnError>()
            .expect("payload is a SpawnError");
        assert_eq!(se.cause().raw_os_error(), Some(libc::ENOMEM), "{se}");
        let msg = se.to_string();
        assert!(msg.contains("vm.max_map_count"), "{msg}");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // A coroutine with a small stack of its own still runs.
    let small = corun::Builder::new()
        .stack_size(SMALL)
        .spawn_on(rt.handle(), || "small ok")
        .unwrap();
    assert_eq!(small.join().unwrap(), "small ok");
    assert_eq!(wait_until_idle(&rt).live, 0);
    child_done();
}

#[test]
fn unmappable_stacks_fail_only_their_coroutines() {
    let out = run_child("child_mmap_failure");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(CHILD_DONE),
        "helper did not finish:\n{stdout}"
    );
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("could not start"))
        .collect();
    assert_eq!(warnings.len(), 1, "want one warning, stderr:\n{stderr}");
    assert!(warnings[0].contains("vm.max_map_count"), "{}", warnings[0]);
}

// ---- a panic while holding a corun::sync lock ----

/// `corun::sync` locks do not poison: a coroutine that panics holding one releases it
/// as its guard drops during the unwind; what it wrote before the panic stays, and
/// the coroutines queued behind it (parked, some in hand-off mode) all get it.
#[test]
fn a_panic_while_holding_a_corun_mutex_releases_it_to_the_waiters() {
    use corun::sync::{Mutex, RwLock};
    use std::time::Duration;
    const WAITERS: u64 = 20;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let rw = Arc::new(RwLock::new(0u64));
    let (held_tx, held_rx) = corun::chan::bounded::<()>(0);
    let (go_tx, go_rx) = corun::chan::bounded::<()>(0);
    let (m2, rw2) = (m.clone(), rw.clone());
    let holder = rt.spawn(move || {
        let mut g = m2.lock();
        let mut w = rw2.write();
        *g = 1;
        *w = 1;
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // parks holding both locks
        std::panic::panic_any("the holder panics");
    });
    held_rx.recv().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for i in 0..WAITERS {
        let (m, rw, started) = (m.clone(), rw.clone(), started.clone());
        waiters.push(rt.spawn(move || {
            started.fetch_add(1, Ordering::SeqCst);
            if i % 2 == 0 {
                *m.lock() += 10;
                0
            } else {
                *rw.read()
            }
        }));
    }
    // A plain thread waits too.
    let m3 = m.clone();
    let thread = std::thread::spawn(move || *m3.lock() += 10);
    while started.load(Ordering::SeqCst) < WAITERS as usize {
        std::thread::yield_now();
    }
    // Long enough that the waiters are parked and the unlock hands off (> 1 ms).
    std::thread::sleep(Duration::from_millis(20));
    go_tx.send(()).unwrap();
    let e = holder.join().unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"the holder panics"));
    for (i, w) in waiters.into_iter().enumerate() {
        let v = w.join().expect("a waiter failed");
        if i % 2 == 1 {
            assert_eq!(v, 1, "a reader saw the value the holder wrote");
        }
    }
    thread.join().unwrap();
    assert_eq!(
        *m.try_lock().expect("the mutex is free"),
        1 + 10 * (WAITERS / 2) + 10
    );
    assert_eq!(*rw.try_write().expect("the rwlock is free"), 1);
}

// ---- the sanitizer run sees into coroutines (.ci/sanitize sets CORUN_SANITIZER) ----

#[test]
#[ignore = "helper: run in a child process by asan_sees_into_coroutines"]
fn child_asan_canary() {
    let Some(which) = support::child_env() else {
        return;
    };
    let h = corun::spawn(move || {
        corun::yield_now(); // on the coroutine's own stack, after a switch
        match which.as_str() {
            "use-after-free" => {
                let b = Box::new([7u8; 64]);
                let p: *const u8 = &b[0];
                drop(b);
                // SAFETY: none; this is the bug the sanitizer must report.
                println!("{}", unsafe { std::ptr::read_volatile(p) });
            }
            "stack-overflow-read" => {
                let a = std::hint::black_box([1u8; 16]);
                let i = std::hint::black_box(20usize);
                let p = a.as_ptr();
                // SAFETY: none; an out-of-bounds read of a coroutine's local.
                println!("{}", unsafe { std::ptr::read_volatile(p.add(i)) });
            }
            // Several leaks: LeakSanitizer scans conservatively, and a stale copy of
            // one pointer left in a register or a stack slot would hide that one.
            "leak" => {
                for _ in 0..16 {
                    std::mem::forget(std::hint::black_box(Box::new([3u8; 4096])));
                }
            }
            "parked-holder" => {
                // The only pointer to this box lives on a parked coroutine's stack
                // when the process exits: not a leak.
                let b = std::hint::black_box(Box::new([5u8; 4096]));
                corun::spawn(move || {
                    let b = b;
                    loop {
                        corun::park();
                        std::hint::black_box(&b);
                    }
                });
            }
            _ => panic!("unknown canary {which}"),
        }
    });
    h.join().unwrap();
    child_done();
}

#[test]
fn asan_sees_into_coroutines() {
    if !support::under_asan() {
        eprintln!(
            "SKIPPED asan_sees_into_coroutines: not an AddressSanitizer build (.ci/sanitize)"
        );
        return;
    }
    for (canary, report) in [
        ("use-after-free", Some("heap-use-after-free")),
        ("stack-overflow-read", Some("stack-buffer-overflow")),
        ("leak", Some("LeakSanitizer: detected memory leaks")),
        ("parked-holder", None),
    ] {
        let out = ChildTest::new("child_asan_canary")
            .env(support::CHILD_ENV, canary)
            .output();
        let stderr = text(&out.stderr);
        match report {
            Some(r) => assert!(
                !out.status.success() && stderr.contains(r),
                "{canary}: no `{r}` report: {:?}\n{stderr}",
                out.status
            ),
            None => assert!(
                out.status.success() && !stderr.contains("LeakSanitizer"),
                "{canary}: {:?}\n{stderr}",
                out.status
            ),
        }
    }
}

// ---- panic hooks and backtraces ----

#[test]
#[ignore = "helper: run in a child process by a_hook_installed_before_the_runtime_sees_coroutine_panics"]
fn child_hook_before_runtime() {
    if !is_child("child_hook_before_runtime") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let name = corun::current().name().map(str::to_owned);
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .unwrap_or("?");
        eprintln!("APP-HOOK saw {msg} in {name:?}");
    }));
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let h = corun::Builder::new()
        .name("hooked")
        .spawn_on(rt.handle(), || -> () { panic!("hook-kaboom") })
        .unwrap();
    assert!(h.join().is_err());
    child_done();
}

#[test]
fn a_hook_installed_before_the_runtime_sees_coroutine_panics() {
    let out = run_child("child_hook_before_runtime");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains(CHILD_DONE),
        "child failed: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("coroutine 'hooked'") && stderr.contains("panicked"),
        "{stderr}"
    );
    let hook = stderr
        .lines()
        .find(|l| l.starts_with("APP-HOOK"))
        .unwrap_or_else(|| panic!("the application's hook was not called:\n{stderr}"));
    assert!(
        hook.contains("hook-kaboom") && hook.contains("Some(\"hooked\")"),
        "{hook}"
    );
}

#[test]
fn rust_backtrace_prints_the_coroutines_backtrace() {
    let out = support::ChildTest::new("child_named_panic")
        .env("RUST_BACKTRACE", "1")
        .output();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains(CHILD_DONE),
        "child failed: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("stack backtrace:"), "{stderr}");
    // The frames are the coroutine's stack, down to where its worker entered it.
    assert!(stderr.contains("corun::sched::task::Cell"), "{stderr}");
    assert!(stderr.contains("corun::sched::worker::run"), "{stderr}");
}
