//! `corun::await_future`: futures from executor-independent sources and from a
//! tokio runtime running beside corun, awaited by coroutines and plain threads.

use corun::Cancelled;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A oneshot built on std only: `send` stores the value and wakes the stored waker.
#[derive(Default)]
struct Shared<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Rx<T>(Arc<Mutex<Shared<T>>>);

impl<T> Future for Rx<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.0.lock().unwrap();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn std_oneshot<T>() -> (impl FnOnce(T), Rx<T>) {
    let sh = Arc::new(Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let tx = sh.clone();
    let send = move |v| {
        let w = {
            let mut s = tx.lock().unwrap();
            s.value = Some(v);
            s.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    };
    (send, Rx(sh))
}

#[test]
fn std_oneshot_from_a_thread() {
    let (send, rx) = std_oneshot::<u32>();
    let h = corun::spawn(move || corun::await_future(rx));
    std::thread::sleep(Duration::from_millis(20));
    send(17);
    assert_eq!(h.join().unwrap(), 17);
}

#[test]
fn tokio_oneshot_without_a_tokio_runtime() {
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let h = corun::spawn(move || corun::await_future(rx).unwrap());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send("from a thread".to_string()).unwrap();
    });
    assert_eq!(h.join().unwrap(), "from a thread");
    t.join().unwrap();
}

#[test]
fn tokio_mpsc_between_coroutines_on_one_worker() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(4);
    let consumer = rt.spawn(move || {
        let mut sum = 0;
        while let Some(v) = corun::await_future(rx.recv()) {
            sum += v;
        }
        sum
    });
    let producer = rt.spawn(move || {
        for i in 1..=1000u64 {
            corun::await_future(tx.send(i)).unwrap();
        }
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), 500_500);
}

#[test]
fn tokio_runtime_handles_awaited_from_coroutines() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = tokio_rt.handle().clone();
    let hs: Vec<_> = (0..50u64)
        .map(|i| {
            let handle = handle.clone();
            corun::spawn(move || {
                let jh = handle.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    i * 2
                });
                corun::await_future(jh).unwrap()
            })
        })
        .collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..50u64).map(|i| i * 2).sum());
    // The same from a plain thread.
    let jh = tokio_rt.spawn(async { "plain" });
    assert_eq!(corun::await_future(jh).unwrap(), "plain");
}

#[test]
fn plain_thread_blocks_until_woken() {
    let (send, rx) = std_oneshot::<&'static str>();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        send("woken");
    });
    assert_eq!(corun::await_future(rx), "woken");
    t.join().unwrap();
}

#[test]
fn cancel_while_awaiting_drops_the_future() {
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let h = corun::spawn(move || {
        let flag = DropFlag(d);
        started_tx.send(()).unwrap();
        corun::await_future(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        })
    });
    started_rx.recv().unwrap();
    h.cancel();
    let r = h.join();
    assert!(matches!(r, Err(e) if e.downcast_ref::<Cancelled>().is_some()));
    assert!(dropped.load(Ordering::SeqCst));
}
