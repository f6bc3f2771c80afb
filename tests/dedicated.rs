//! `Builder::dedicated_thread`: a coroutine with an OS thread of its own.

use corun::chan;
use std::collections::HashSet;
use std::time::Duration;
use support::{assert_child_done, child_done, eventually, is_child, run_child};

mod support;

fn gettid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

fn dedicated<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> corun::JoinHandle<T> {
    corun::Builder::new()
        .name("own-thread")
        .dedicated_thread()
        .spawn(f)
        .expect("a dedicated thread")
}

#[test]
fn its_thread_runs_nothing_else_and_exits_with_it() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (tid_tx, tid_rx) = chan::bounded::<i64>(1);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let h = rt.spawn(move || {
        let own = dedicated(move || {
            tid_tx.send(gettid()).unwrap();
            // Parks, yields and sleeps while the others run: its thread stays idle
            // rather than running them.
            let mut others = Vec::new();
            for i in 0..200u64 {
                others.push(corun::spawn(move || {
                    corun::yield_now();
                    (gettid(), i)
                }));
                if i % 50 == 0 {
                    corun::sleep(Duration::from_millis(1));
                }
            }
            go_rx.recv().unwrap();
            let tids: Vec<i64> = others.into_iter().map(|h| h.join().unwrap().0).collect();
            (gettid(), tids)
        });
        let tid = tid_rx.recv().unwrap();
        let workers: Vec<_> = (0..500)
            .map(|_| {
                corun::spawn(|| {
                    corun::yield_now();
                    gettid()
                })
            })
            .collect();
        let worker_tids: HashSet<i64> = workers.into_iter().map(|h| h.join().unwrap()).collect();
        go_tx.send(()).unwrap();
        let (own_tid, spawned_tids) = own.join().unwrap();
        (tid, own_tid, worker_tids, spawned_tids)
    });
    let (tid, own_tid, worker_tids, spawned_tids) = h.join().unwrap();
    assert_eq!(tid, own_tid, "the coroutine stayed on its thread");
    assert!(
        !worker_tids.contains(&tid),
        "a worker's coroutine ran on the dedicated thread"
    );
    assert!(
        !spawned_tids.contains(&tid),
        "a coroutine it spawned ran on its thread"
    );
    // Go retires the thread of a locked goroutine that exits: so does corun.
    eventually(
        "the dedicated thread to exit",
        Duration::from_secs(20),
        || (!std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()).then_some(()),
    );
    assert_eq!(rt.metrics().dedicated_threads, 0);
}

#[test]
fn channels_sockets_timers_and_spawn_work_from_it() {
    let h = dedicated(|| {
        let l = corun::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let client = corun::spawn(move || {
            use std::io::{Read, Write};
            let mut s = corun::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"ping").unwrap();
            let mut buf = [0; 4];
            s.read_exact(&mut buf).unwrap();
            buf
        });
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0; 4];
        std::io::Read::read_exact(&mut s, &mut buf).unwrap();
        std::io::Write::write_all(&mut s, b"pong").unwrap();
        assert_eq!(&buf, b"ping");
        let t0 = std::time::Instant::now();
        corun::sleep(Duration::from_millis(30));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let timeout = chan::after(Duration::from_millis(10));
        timeout.recv().unwrap();
        let m = corun::sync::Mutex::new(1);
        *m.lock() += 1;
        let n = *m.lock();
        (client.join().unwrap(), n)
    });
    assert_eq!(h.join().unwrap(), (*b"pong", 2));
}

#[test]
fn it_counts_in_dump_and_metrics() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = chan::bounded::<()>(0);
    let h = rt.block_on(move || dedicated(move || rx.recv().unwrap()));
    let m = eventually(
        "the dedicated coroutine to park",
        Duration::from_secs(20),
        || {
            let m = rt.metrics();
            let d = rt.dump();
            (d.contains("\"own-thread\" [chan receive") && m.dedicated_threads == 1)
                .then_some((m, d))
        },
    );
    let (m, d) = m;
    assert!(d.contains("dedicated thread, stack"), "{d}");
    assert!(d.contains("1 on dedicated threads"), "{d}");
    assert_eq!(m.live, 1, "{m:?}");
    assert!(m.spawned() >= 1, "{m:?}");
    tx.send(()).unwrap();
    h.join().unwrap();
    let m = eventually(
        "the dedicated thread to end",
        Duration::from_secs(20),
        || {
            let m = rt.metrics();
            (m.dedicated_threads == 0).then_some(m)
        },
    );
    assert_eq!(m.spawned(), m.finished(), "{m:?}");
}

#[test]
fn past_the_limit_the_spawn_fails_and_says_how_to_raise_it() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .dedicated_threads(1)
        .build()
        .unwrap();
    let (tx, rx) = chan::bounded::<()>(0);
    let first = rt.block_on(move || dedicated(move || rx.recv().unwrap()));
    let err = rt
        .block_on(|| corun::Builder::new().dedicated_thread().spawn(|| ()))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("RuntimeBuilder::dedicated_threads"),
        "{err}"
    );
    tx.send(()).unwrap();
    first.join().unwrap();
    // The slot is free again once the first thread is gone.
    let again = eventually("the slot to be free", Duration::from_secs(20), || {
        rt.block_on(|| corun::Builder::new().dedicated_thread().spawn(|| 7))
            .ok()
    });
    assert_eq!(again.join().unwrap(), 7);
}

#[test]
fn dropping_the_runtime_cancels_and_joins_it() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = chan::bounded::<u32>(0);
    let (tid_tx, tid_rx) = chan::bounded::<i64>(1);
    let h = rt.block_on(move || {
        dedicated(move || {
            tid_tx.send(gettid()).unwrap();
            rx.recv()
        })
    });
    let tid = tid_rx.recv().unwrap();
    drop(rt);
    assert!(h.join().is_err(), "cancelled by the shutdown");
    assert!(!std::path::Path::new(&format!("/proc/self/task/{tid}")).exists());
    drop(tx);
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(r, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// In a child process: it changes a namespace of one of its threads.
#[test]
#[ignore = "run by its parent in a child process"]
fn child_hostname_change() {
    if !is_child("child_hostname_change") {
        return;
    }
    const NEW: &str = "corun-dedicated";
    let before = hostname();
    let h = dedicated(move || {
        // SAFETY: unshare changes only the calling thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the name is valid for its length.
        let r = unsafe { libc::sethostname(NEW.as_ptr().cast(), NEW.len()) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        let own = hostname();
        // A coroutine it spawns, a blocking call, and a dedicated coroutine it
        // spawns: none runs on a thread made from this one.
        let spawned = corun::spawn(hostname).join().unwrap();
        let blocking = corun::blocking(hostname);
        let nested = dedicated(hostname).join().unwrap();
        Ok((own, spawned, blocking, nested))
    });
    match h.join().unwrap() {
        Err(e) => println!("SKIPPED: unshare(CLONE_NEWUTS) needs CAP_SYS_ADMIN: {e}"),
        Ok((own, spawned, blocking, nested)) => {
            assert_eq!(own, NEW);
            assert_eq!(spawned, before, "a spawned coroutine");
            assert_eq!(blocking, before, "a blocking-pool thread");
            assert_eq!(nested, before, "a nested dedicated coroutine");
            // Nor does an unrelated coroutine see it after the first one ended.
            for _ in 0..100 {
                assert_eq!(corun::spawn(hostname).join().unwrap(), before);
            }
            println!("checked");
        }
    }
    child_done();
}

#[test]
fn a_namespace_change_stays_on_its_thread() {
    let out = run_child("child_hostname_change");
    assert_child_done(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("checked") || stdout.contains("SKIPPED"),
        "{stdout}"
    );
    if stdout.contains("SKIPPED") {
        println!("{stdout}");
    }
}

#[test]
fn it_answers_while_every_worker_is_blocked() {
    // No hand-off: the workers' coroutines are stranded while they block.
    let rt = corun::Runtime::builder()
        .workers(2)
        .extra_threads(0)
        .build()
        .unwrap();
    let (ask_tx, ask_rx) = chan::bounded::<chan::Sender<&'static str>>(0);
    let health = corun::Builder::new()
        .name("health")
        .dedicated_thread()
        .spawn_on(rt.handle(), move || {
            for reply in ask_rx {
                reply.send("ok").unwrap();
            }
        })
        .unwrap();
    let (blocked_tx, blocked_rx) = chan::bounded::<()>(2);
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let (b, r) = (blocked_tx.clone(), release_rx.clone());
            rt.spawn(move || {
                b.send(()).unwrap();
                // Blocks the worker (a std lock and channel, not corun's).
                let _ = r.lock().unwrap().recv_timeout(Duration::from_secs(30));
            })
        })
        .collect();
    blocked_rx.recv().unwrap();
    blocked_rx.recv().unwrap();
    let (reply_tx, reply_rx) = chan::bounded(1);
    ask_tx.send(reply_tx).unwrap();
    let answer = reply_rx.recv_timeout(Duration::from_secs(10));
    for _ in 0..2 {
        release_tx.send(()).unwrap();
    }
    assert_eq!(answer.ok(), Some("ok"));
    drop(ask_tx);
    health.join().unwrap();
    for h in stuck {
        h.join().unwrap();
    }
}
