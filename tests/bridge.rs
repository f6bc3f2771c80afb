//! The tokio bridge (feature `tokio`): futures that use tokio's IO, timers and
//! `tokio::spawn`, awaited by coroutines through `corun::await_future` with no tokio
//! runtime of the test's own.
//!
//!     cargo test --release --features tokio --test bridge

use corun::Cancelled;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

/// A corun echo server on `rt`: one coroutine per connection.
fn echo_server(rt: &corun::Runtime) -> std::net::SocketAddr {
    let l = corun::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    rt.spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            corun::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The names of the threads of this process whose name is `name`.
fn threads_named(name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == name)
        .count()
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// 1,000 coroutines, spread over every worker, each make a request over a tokio
/// `TcpStream` (tokio's reactor) after a tokio timer, all in flight together, and
/// each gets its own answer back.
#[test]
fn a_thousand_coroutines_make_tokio_requests_on_every_worker() {
    let workers = 4;
    let rt = corun::Runtime::builder()
        .workers(workers)
        .name("br1k")
        .build()
        .unwrap();
    let addr = echo_server(&rt);
    let hs: Vec<_> = (0..1000u32)
        .map(|i| {
            rt.spawn(move || {
                // A little work first, so that idle workers steal the coroutines
                // not started yet and every worker runs some.
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_micros(200) {
                    std::hint::spin_loop();
                }
                let got = corun::await_future(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let mut s = tokio::net::TcpStream::connect(addr).await?;
                    let msg = format!("request {i}\n");
                    s.write_all(msg.as_bytes()).await?;
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).await?;
                    Ok::<_, std::io::Error>(String::from_utf8(back).unwrap())
                })
                .unwrap();
                assert_eq!(got, format!("request {i}\n"));
                std::thread::current().name().unwrap().to_owned()
            })
        })
        .collect();
    let mut by_worker = BTreeMap::new();
    for h in hs {
        *by_worker.entry(h.join().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(by_worker.values().sum::<u32>(), 1000);
    // (Threads sysmon added, named on from worker-4, may have run some too.)
    for i in 0..workers {
        assert!(
            by_worker.contains_key(&format!("br1k-worker-{i}")),
            "every worker ran some of them: {by_worker:?}"
        );
    }
    // Its worker, and any thread of its blocking pool (same name).
    let tokio_threads = threads_named("br1k-tokio");
    assert!(tokio_threads >= 1, "{tokio_threads} tokio threads");
    drop(rt);
    support::wait_for("the tokio threads to exit", Duration::from_secs(10), || {
        threads_named("br1k-tokio") == 0
    });
}

/// A tokio timer inside the bridged future fires, and `tokio::time::timeout` ends
/// a future that never completes; the coroutine's worker is free meanwhile.
#[test]
fn tokio_timers_fire() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let h = rt.spawn(|| {
        let t0 = Instant::now();
        // tokio's `sleep` looks for the runtime when called: call it inside.
        corun::await_future(async { tokio::time::sleep(Duration::from_millis(50)).await });
        let slept = t0.elapsed();
        let timed_out = corun::await_future(async {
            tokio::time::timeout(Duration::from_millis(20), std::future::pending::<()>()).await
        });
        (slept, timed_out.is_err())
    });
    // The one worker runs other coroutines while that one waits.
    let other = rt.spawn(|| 7);
    assert_eq!(other.join().unwrap(), 7);
    let (slept, timed_out) = h.join().unwrap();
    assert!(slept >= Duration::from_millis(50), "{slept:?}");
    assert!(timed_out);
}

/// What the future `tokio::spawn`s runs on the bridge's tokio runtime.
#[test]
fn tokio_spawn_inside_the_future() {
    let h = corun::spawn(|| {
        corun::await_future(async {
            let t = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                std::thread::current().name().map(str::to_owned)
            });
            t.await.unwrap()
        })
    });
    let name = h.join().unwrap().unwrap();
    assert!(name.ends_with("-tokio"), "{name}");
}

/// Cancelling a coroutine that waits in the bridge (on tokio IO that never
/// completes) drops the future and unwinds the coroutine.
#[test]
fn cancel_while_waiting_in_the_bridge_drops_the_future() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    // A server that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let h = rt.spawn(move || {
        corun::await_future(async move {
            let _flag = DropFlag(d);
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            started_tx.send(()).unwrap();
            let mut b = [0u8; 1];
            s.read(&mut b).await
        })
    });
    let _conn = l.accept().unwrap();
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!dropped.load(Ordering::SeqCst));
    h.cancel();
    let r = h.join();
    assert!(matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some()));
    assert!(dropped.load(Ordering::SeqCst));
}

/// Dropping the runtime unwinds a coroutine waiting in the bridge (its future is
/// dropped while the tokio runtime still runs), then stops the tokio runtime.
#[test]
fn runtime_drop_unwinds_then_stops_tokio() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .name("brdrop")
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let h = rt.spawn(move || {
        corun::await_future(async move {
            let _flag = DropFlag(d);
            tokio::time::sleep(Duration::from_secs(3600)).await
        })
    });
    support::wait_for("the tokio thread", Duration::from_secs(10), || {
        threads_named("brdrop-tokio") >= 1
    });
    drop(rt);
    assert!(dropped.load(Ordering::SeqCst));
    assert!(matches!(h.join(), Err(e) if e.downcast_ref::<Cancelled>().is_some()));
    support::wait_for("the tokio threads to exit", Duration::from_secs(10), || {
        threads_named("brdrop-tokio") == 0
    });
}

fn panic_message(r: std::thread::Result<()>) -> String {
    let e = r.expect_err("it should have panicked");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A corun wait inside a bridged poll (it would switch coroutines with tokio's
/// context entered) panics with a message naming the cause; the worker and the
/// bridge go on working, and no tokio context is left behind.
#[test]
fn a_corun_wait_inside_the_bridged_future_panics_clearly() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (_tx, rx) = corun::chan::bounded::<u32>(1);
    type Case = Box<dyn FnOnce() + Send>;
    let cases: Vec<(&str, Case)> = vec![
        (
            "sleep",
            Box::new(|| {
                corun::await_future(async { corun::sleep(Duration::from_millis(10)) });
            }),
        ),
        (
            "recv",
            Box::new(move || {
                corun::await_future(async move {
                    let _ = rx.recv();
                });
            }),
        ),
        (
            "nested await_future",
            Box::new(|| {
                corun::await_future(async {
                    corun::await_future(async {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    })
                });
            }),
        ),
    ];
    for (what, f) in cases {
        let msg = panic_message(rt.spawn(f).join());
        assert!(
            msg.contains("inside a future polled by corun::await_future"),
            "{what}: {msg}"
        );
    }
    // Things that do not wait are fine inside, a nested await_future too.
    let ok = rt.spawn(|| {
        corun::await_future(async {
            let (tx, rx) = corun::chan::bounded(1);
            tx.send(5).unwrap();
            corun::spawn(|| ());
            corun::await_future(async { rx.recv().unwrap() + 1 })
        })
    });
    assert_eq!(ok.join().unwrap(), 6);
    let after = rt.spawn(|| {
        let outside = tokio::runtime::Handle::try_current().is_err();
        corun::sleep(Duration::from_millis(1));
        (outside, corun::await_future(async { 3 }))
    });
    assert_eq!(after.join().unwrap(), (true, 3));
}

/// tokio's `Handle::block_on` inside a bridged future panics (tokio's own check)
/// instead of blocking the worker.
#[test]
fn block_on_inside_the_bridged_future_panics() {
    let h = corun::spawn(|| {
        corun::await_future(async {
            tokio::runtime::Handle::current().block_on(async { 1 });
        })
    });
    let msg = panic_message(h.join());
    assert!(
        msg.contains("Cannot start a runtime from within a runtime"),
        "{msg}"
    );
}

/// Outside a bridged future, `Handle::block_on` of a tokio runtime blocks the
/// worker: sysmon names the coroutine and points at `await_future`.
#[test]
fn block_on_outside_is_named_by_sysmon() {
    let _serial = support::serial();
    let (route, lines) = support::warning_log();
    let rt = corun::Runtime::builder()
        .workers(1)
        .warnings(route)
        .build()
        .unwrap();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let th = tokio_rt.handle().clone();
    corun::Builder::new()
        .name("blocker")
        .spawn_on(rt.handle(), move || {
            th.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await })
        })
        .unwrap()
        .join()
        .unwrap();
    let got = lines.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|l| l.contains("'blocker'") && l.contains("corun::await_future")),
        "{got:?}"
    );
}

/// A future that keeps its waker where the test can reach it, and is ready at its
/// second poll.
struct KeepWaker(Arc<Mutex<Option<Waker>>>, bool);

impl Future for KeepWaker {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.1 {
            return Poll::Ready(());
        }
        self.1 = true;
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A waker kept after its wait (as tokio keeps them) does nothing harmful when
/// woken: while its coroutine waits on something else (a spurious wake-up, which
/// the wait re-checks), after the coroutine ended, and after its runtime is gone.
#[test]
fn a_waker_that_outlives_its_coroutine_does_nothing() {
    let kept = Arc::new(Mutex::new(None::<Waker>));
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = corun::chan::bounded::<u32>(0);
    let k = kept.clone();
    let h = rt.spawn(move || {
        corun::await_future(KeepWaker(k, false));
        // Now waiting on a channel; the stale waker fires meanwhile.
        rx.recv().unwrap()
    });
    let waker = support::eventually("the kept waker", Duration::from_secs(10), || {
        kept.lock().unwrap().clone()
    });
    for _ in 0..100 {
        waker.wake_by_ref();
    }
    tx.send(9).unwrap();
    assert_eq!(h.join().unwrap(), 9);
    // The coroutine has ended.
    let woken = Arc::new(AtomicUsize::new(0));
    let w = waker.clone();
    let n = woken.clone();
    std::thread::spawn(move || {
        w.wake_by_ref();
        n.fetch_add(1, Ordering::SeqCst);
    })
    .join()
    .unwrap();
    drop(rt);
    // The runtime is gone.
    let n = woken.clone();
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
        n.fetch_add(1, Ordering::SeqCst);
    })
    .join()
    .unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 2);
}

/// On a plain thread the bridge works too (the process's own tokio runtime).
#[test]
fn plain_thread_awaits_a_tokio_timer() {
    let t0 = Instant::now();
    corun::await_future(async { tokio::time::sleep(Duration::from_millis(20)).await });
    assert!(t0.elapsed() >= Duration::from_millis(20));
}
