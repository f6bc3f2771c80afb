//! `corun::blocking` and `corun::fs`: blocking closures run on the pool while the
//! worker keeps running other coroutines; values, panics and cancellation come
//! back to the caller; idle pool threads are reaped.

use corun::Cancelled;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::wait_for;

mod support;

#[test]
fn blocking_calls_do_not_stop_the_worker() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let third_ran = Arc::new(AtomicBool::new(false));
    let sleepers: Vec<_> = (0..2u32)
        .map(|i| {
            let (started, third_ran) = (started.clone(), third_ran.clone());
            rt.spawn(move || {
                corun::blocking(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    // Still inside the blocking call: wait (bounded) for the third
                    // coroutine, which needs the only worker to run.
                    wait_for("the third coroutine", Duration::from_secs(10), || {
                        third_ran.load(Ordering::SeqCst)
                    });
                    i * 10
                })
            })
        })
        .collect();
    let (s, t) = (started.clone(), third_ran.clone());
    let third = rt.spawn(move || {
        while s.load(Ordering::SeqCst) < 2 {
            corun::sleep(Duration::from_millis(1));
        }
        t.store(true, Ordering::SeqCst);
    });
    third.join().unwrap();
    let vals: Vec<_> = sleepers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(vals, [0, 10]);
}

#[test]
fn many_concurrent_blocking_calls_return_their_values() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..1000u64)
        .map(|i| {
            rt.spawn(move || {
                corun::blocking(move || {
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    i * i
                })
            })
        })
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..1000u64).map(|i| i * i).sum());
    assert!(corun::blocking::threads() <= corun::blocking::max_threads());
}

#[test]
fn panic_propagates_to_the_caller() {
    let h = corun::spawn(|| corun::blocking(|| -> u32 { std::panic::panic_any(7u32) }));
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<u32>(), Some(&7));
    // The pool keeps working after a panic.
    assert_eq!(corun::spawn(|| corun::blocking(|| 1)).join().unwrap(), 1);
}

#[test]
fn on_a_plain_thread_it_runs_inline() {
    let me = std::thread::current().id();
    assert!(corun::blocking(move || std::thread::current().id() == me));
}

#[test]
fn cancel_during_blocking_lets_the_closure_finish() {
    let (started_tx, started_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let (d, a) = (done.clone(), after.clone());
    let h = corun::spawn(move || {
        corun::blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            d.store(true, Ordering::SeqCst);
        });
        a.store(true, Ordering::SeqCst); // never reached
    });
    started_rx.recv().unwrap();
    assert!(h.cancel());
    let r = h.join();
    assert!(
        done.load(Ordering::SeqCst),
        "join returned before the closure ended"
    );
    assert!(!after.load(Ordering::SeqCst));
    assert!(matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some()));
}

#[test]
fn cancelled_before_the_call_does_not_run_the_closure() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    let h = corun::spawn(move || {
        // Busy-wait (no cancellation point) until cancelled.
        while go_rx.try_recv().is_err() {
            std::thread::yield_now();
        }
        corun::blocking(move || r2.store(true, Ordering::SeqCst));
    });
    h.cancel();
    // Cancelled before it ever ran, its closure is dropped with the receiver: the
    // send then fails, and that is fine.
    let _ = go_tx.send(());
    let r = h.join();
    assert!(matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some()));
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn idle_threads_are_reaped() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let b = barrier.clone();
            rt.spawn(move || corun::blocking(move || b.wait().is_leader()))
        })
        .collect();
    // Four closures meet at a barrier, so four pool threads ran at once.
    let leaders = hs.into_iter();
    let leaders = leaders.map(|h| h.join().unwrap()).filter(|&l| l).count();
    assert_eq!(leaders, 1);
    assert!(corun::blocking::threads() >= 4);
    // Other tests in this binary may use the pool meanwhile: wait (bounded) until
    // every thread has been idle long enough to exit.
    corun::blocking::set_idle_timeout(Duration::from_millis(50));
    wait_for("an empty pool", Duration::from_secs(30), || {
        corun::blocking::threads() == 0
    });
    // And the pool starts again on demand.
    assert_eq!(rt.spawn(|| corun::blocking(|| 5)).join().unwrap(), 5);
}

#[test]
fn fs_round_trip() {
    let dir = std::env::temp_dir().join(format!("corun-blocking-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    rt.spawn(move || {
        let a = d.join("a.txt");
        corun::fs::write(&a, "hello, coroutines").unwrap();
        assert_eq!(corun::fs::read_to_string(&a).unwrap(), "hello, coroutines");
        assert_eq!(corun::fs::read(&a).unwrap(), b"hello, coroutines");

        let b = d.join("b.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut f = corun::fs::File::create(&b).unwrap();
        f.write_all(&data).unwrap();
        f.flush().unwrap();
        f.sync_all().unwrap();
        assert_eq!(f.metadata().unwrap().len(), data.len() as u64);
        drop(f);

        let mut f = corun::fs::File::open(&b).unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert!(back == data);
        f.seek(SeekFrom::Start(251)).unwrap();
        let mut one = [9u8; 3];
        f.read_exact(&mut one).unwrap();
        assert_eq!(one, [0, 1, 2]);
        let mut br = std::io::BufReader::new(&f);
        let mut rest = Vec::new();
        br.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), data.len() - 254);

        assert!(corun::fs::read(d.join("missing")).is_err());
    })
    .join()
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dropping_the_runtime_waits_for_a_running_closure() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let h = rt.spawn(move || {
        corun::blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            d.store(true, Ordering::SeqCst);
        })
    });
    started_rx.recv().unwrap();
    drop(rt);
    assert!(done.load(Ordering::SeqCst));
    let r = h.join();
    assert!(matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some()));
}
