//! Channel semantics: Go's test/chan programs (fifo.go, nonblock.go, sieve1.go,
//! sieve2.go-style, close.go / closedchan.go, zero-capacity chans) as Rust tests, plus
//! close/drop semantics for every flavour, timeouts and mixed threads/coroutines.

use corun::chan::{
    self, bounded, unbounded, Receiver, RecvError, RecvTimeoutError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The three flavours: rendezvous, buffered, unbounded.
fn flavours<T>() -> Vec<(&'static str, Sender<T>, Receiver<T>)> {
    let (a, b) = bounded(0);
    let (c, d) = bounded(3);
    let (e, f) = unbounded();
    vec![("sync", a, b), ("bounded(3)", c, d), ("unbounded", e, f)]
}

// fifo.go: values come out in the order they went in, from one sender and from a chain.
#[test]
fn fifo_async_and_sync_chain() {
    const N: usize = 10;
    let (tx, rx) = bounded(N);
    for i in 0..N {
        tx.send(i).unwrap();
    }
    for i in 0..N {
        assert_eq!(rx.recv().unwrap(), i);
    }
    // SynchFifo: a chain of coroutines, each waiting for its predecessor.
    let (mut in_tx, first) = bounded::<()>(0);
    let (out_tx, out_rx) = bounded::<usize>(0);
    let start = in_tx.clone();
    let mut hs = Vec::new();
    let mut prev = first;
    for i in 0..N {
        let (next_tx, next_rx) = bounded::<()>(0);
        let out = out_tx.clone();
        let p = prev;
        hs.push(corun::go!(move || {
            p.recv().unwrap();
            out.send(i).unwrap();
            next_tx.send(()).unwrap();
        }));
        prev = next_rx;
        in_tx = start.clone();
    }
    drop(in_tx);
    let last = prev;
    let tail = corun::go!(move || last.recv().unwrap());
    start.send(()).unwrap();
    for i in 0..N {
        assert_eq!(out_rx.recv().unwrap(), i);
    }
    tail.join().unwrap();
    for h in hs {
        h.join().unwrap();
    }
}

// fifo order with many senders: each sender's values arrive in its own order.
#[test]
fn per_sender_order_is_kept() {
    for (name, tx, rx) in flavours::<(usize, usize)>() {
        let hs: Vec<_> = (0..4)
            .map(|s| {
                let tx = tx.clone();
                corun::go!(move || (0..500).for_each(|i| tx.send((s, i)).unwrap()))
            })
            .collect();
        drop(tx);
        let mut next = [0usize; 4];
        for (s, i) in rx.iter() {
            assert_eq!(i, next[s], "{name}: sender {s} out of order");
            next[s] += 1;
        }
        assert_eq!(next, [500; 4], "{name}");
        hs.into_iter().for_each(|h| h.join().unwrap());
    }
}

// nonblock.go: try_send/try_recv never wait; on a sync channel they succeed only
// against a waiting partner.
#[test]
fn nonblocking_operations() {
    for (name, tx, rx) in flavours::<i32>() {
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{name}");
        match tx.capacity() {
            Some(0) => assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))),
            _ => {
                tx.try_send(1).unwrap();
                assert_eq!(rx.try_recv(), Ok(1), "{name}");
            }
        }
    }
    // A waiting receiver makes try_send succeed on a rendezvous channel.
    let (tx, rx) = bounded::<i32>(0);
    let h = corun::go!(move || rx.recv().unwrap());
    let mut sent = false;
    for _ in 0..100_000 {
        if tx.try_send(7).is_ok() {
            sent = true;
            break;
        }
        corun::yield_now();
    }
    assert!(sent);
    assert_eq!(h.join().unwrap(), 7);
    // And a waiting sender makes try_recv succeed.
    let (tx, rx) = bounded::<i32>(0);
    let h = corun::go!(move || tx.send(8).unwrap());
    let got = loop {
        match rx.try_recv() {
            Ok(v) => break v,
            Err(TryRecvError::Empty) => corun::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, 8);
    h.join().unwrap();
}

// sieve1.go: the concurrent prime sieve, a coroutine per prime, rendezvous channels.
#[test]
fn prime_sieve() {
    fn generate(tx: Sender<u32>) {
        for i in 2.. {
            if tx.send(i).is_err() {
                return;
            }
        }
    }
    fn filter(rx: Receiver<u32>, tx: Sender<u32>, prime: u32) {
        for i in &rx {
            if i % prime != 0 && tx.send(i).is_err() {
                return;
            }
        }
    }
    let primes = corun::go!(|| {
        let (tx, mut rx) = bounded(0);
        corun::go!(move || generate(tx));
        let mut primes = Vec::new();
        for _ in 0..100 {
            let prime = rx.recv().unwrap();
            primes.push(prime);
            let (tx1, rx1) = bounded(0);
            corun::go!(move || filter(rx, tx1, prime));
            rx = rx1;
        }
        primes // dropping rx unwinds the chain: each send fails in turn
    })
    .join()
    .unwrap();
    assert_eq!(&primes[..10], &[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert_eq!(primes[99], 541);
}

// sieve2.go-style: the sieve with buffered channels and a select-driven merge.
#[test]
fn prime_sieve_buffered_with_select() {
    let (tx, rx) = bounded::<u64>(16);
    let (quit_tx, quit_rx) = bounded::<()>(0);
    let gen = corun::go!(move || {
        let mut i = 2;
        loop {
            corun::select! {
                send(tx, i) -> r => if r.is_err() { return },
                recv(quit_rx) -> _ => return,
            }
            i += 1;
        }
    });
    let mut rx = rx;
    let mut primes = Vec::new();
    while primes.len() < 50 {
        let p = rx.recv().unwrap();
        primes.push(p);
        let (t, r) = bounded(16);
        let src = rx;
        corun::go!(move || {
            for v in &src {
                if v % p != 0 && t.send(v).is_err() {
                    return;
                }
            }
        });
        rx = r;
    }
    drop(quit_tx);
    drop(rx);
    gen.join().unwrap();
    assert_eq!(primes[49], 229);
}

// close.go / closedchan.go: after close, receivers drain then see closed; sends fail
// with the value; try variants report Disconnected; for every flavour.
#[test]
fn close_semantics_every_flavour() {
    for (name, tx, rx) in flavours::<String>() {
        let buffered = tx.capacity() != Some(0);
        if buffered {
            tx.send("a".into()).unwrap();
            tx.send("b".into()).unwrap();
        }
        drop(tx);
        if buffered {
            assert_eq!(rx.recv().as_deref(), Ok("a"), "{name}");
            assert_eq!(rx.try_recv().as_deref(), Ok("b"), "{name}");
        }
        assert_eq!(rx.recv(), Err(RecvError), "{name}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected), "{name}");
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Disconnected),
            "{name}"
        );
        assert_eq!(rx.iter().count(), 0);
        // select sees a closed channel as ready.
        let r = corun::select! { recv(rx) -> r => r, default => Ok("none".into()) };
        assert_eq!(r, Err(RecvError), "{name}");
    }
    for (name, tx, rx) in flavours::<String>() {
        drop(rx);
        assert_eq!(tx.send("x".into()).unwrap_err().into_inner(), "x", "{name}");
        assert_eq!(
            tx.try_send("y".into()),
            Err(TrySendError::Disconnected("y".into())),
            "{name}"
        );
        assert!(tx
            .send_timeout("z".into(), Duration::from_millis(1))
            .unwrap_err()
            .is_disconnected());
    }
}

// Closing wakes everyone parked: receivers when the last sender goes, senders (with
// their values) when the last receiver goes. Clones keep a channel open.
#[test]
fn close_wakes_parked_waiters() {
    for (name, tx, rx) in flavours::<u32>() {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let rx = rx.clone();
                corun::go!(move || rx.recv())
            })
            .collect();
        let t = {
            let rx = rx.clone();
            std::thread::spawn(move || rx.recv())
        };
        corun::sleep(Duration::from_millis(20));
        let tx2 = tx.clone();
        drop(tx);
        corun::sleep(Duration::from_millis(5));
        assert!(
            hs.iter().all(|h| !h.is_finished()),
            "{name}: a clone keeps it open"
        );
        drop(tx2);
        for h in hs {
            assert_eq!(h.join().unwrap(), Err(RecvError), "{name}");
        }
        assert_eq!(t.join().unwrap(), Err(RecvError));
    }
    // Senders parked on a full/sync channel get their values back.
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<u32>(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        let hs: Vec<_> = (1..=8u32)
            .map(|i| {
                let tx = tx.clone();
                corun::go!(move || tx.send(i).map_err(|e| e.into_inner()))
            })
            .collect();
        corun::sleep(Duration::from_millis(20));
        drop(rx);
        let mut back: Vec<u32> = hs
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_err())
            .collect();
        back.sort();
        assert_eq!(back, (1..=8).collect::<Vec<_>>());
    }
}

// Values still buffered when the last receiver goes are dropped, once.
#[test]
fn buffered_values_dropped_once() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = unbounded();
    for _ in 0..10 {
        tx.send(Counted(drops.clone())).unwrap();
    }
    drop(rx.recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    drop(tx);
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

// Zero-capacity (sync) channels: send returns only once a receiver has the value.
#[test]
fn rendezvous_synchronises() {
    let (tx, rx) = bounded::<u32>(0);
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let h = corun::go!(move || {
        for _ in 0..100 {
            let v = rx.recv().unwrap();
            g.store(v as usize, Ordering::SeqCst);
        }
    });
    for i in 1..=100 {
        tx.send(i).unwrap();
        // The receiver has taken i (it may not have stored it yet), never i+1.
        assert!(got.load(Ordering::SeqCst) <= i as usize);
    }
    h.join().unwrap();
    assert_eq!(tx.len(), 0);
}

#[test]
fn timeouts() {
    for (name, tx, rx) in flavours::<u8>() {
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(RecvTimeoutError::Timeout),
            "{name}"
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        if let Some(cap) = tx.capacity() {
            for i in 0..cap {
                tx.send(i as u8).unwrap();
            }
            let t = Instant::now();
            assert_eq!(
                tx.send_timeout(9, Duration::from_millis(30)),
                Err(SendTimeoutError::Timeout(9)),
                "{name}"
            );
            assert!(t.elapsed() >= Duration::from_millis(30));
        }
    }
    // The same inside a coroutine (parks on the worker's timer), and a timeout that
    // does not fire because a value comes first.
    let (tx, rx) = unbounded::<u8>();
    let h = corun::go!(move || {
        let first = rx.recv_timeout(Duration::from_millis(20));
        let second = rx.recv_timeout(Duration::from_secs(10));
        (first, second)
    });
    std::thread::sleep(Duration::from_millis(60));
    tx.send(5).unwrap();
    assert_eq!(h.join().unwrap(), (Err(RecvTimeoutError::Timeout), Ok(5)));
}

// A timed-out waiter leaves no entry behind: later sends go to live receivers.
#[test]
fn timed_out_waiters_leave_no_trace() {
    let (tx, rx) = bounded::<u32>(0);
    for _ in 0..100 {
        assert!(rx.recv_timeout(Duration::from_micros(50)).is_err());
    }
    assert!(tx.try_send(1).is_err(), "no stale receiver may take it");
    let h = corun::go!(move || rx.recv().unwrap());
    tx.send(2).unwrap();
    assert_eq!(h.join().unwrap(), 2);
}

// Plain threads and coroutines on the same channels, every direction.
#[test]
fn threads_and_coroutines_mixed() {
    let (tx, rx) = bounded::<u64>(4);
    let (done_tx, done_rx) = unbounded::<u64>();
    let mut producers = Vec::new();
    for p in 0..4u64 {
        let tx = tx.clone();
        if p % 2 == 0 {
            producers.push(std::thread::spawn(move || {
                (0..1000).for_each(|i| tx.send(p * 1000 + i).unwrap())
            }));
        } else {
            let h = corun::go!(move || (0..1000).for_each(|i| tx.send(p * 1000 + i).unwrap()));
            producers.push(std::thread::spawn(move || h.join().unwrap()));
        }
    }
    drop(tx);
    let mut consumers = Vec::new();
    for c in 0..4 {
        let rx = rx.clone();
        let done = done_tx.clone();
        if c % 2 == 0 {
            consumers.push(std::thread::spawn(move || {
                done.send(rx.iter().sum()).unwrap()
            }));
        } else {
            let h = corun::go!(move || done.send(rx.iter().sum()).unwrap());
            consumers.push(std::thread::spawn(move || h.join().unwrap()));
        }
    }
    drop(rx);
    drop(done_tx);
    let total: u64 = done_rx.iter().sum();
    assert_eq!(total, (0..4000).sum::<u64>());
    producers.into_iter().for_each(|h| h.join().unwrap());
    consumers.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn error_messages() {
    assert_eq!(
        chan::SendError(1).to_string(),
        "sending on a closed channel (its receivers are all gone, or a sender closed it)"
    );
    assert_eq!(
        RecvError.to_string(),
        "receiving on an empty, closed channel (its senders are all gone, or one closed it)"
    );
    assert_eq!(
        TrySendError::Full(1).to_string(),
        "sending on a full channel"
    );
    assert_eq!(
        TryRecvError::Empty.to_string(),
        "receiving on an empty channel"
    );
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out receiving on an empty channel"
    );
    let e: Box<dyn std::error::Error> = Box::new(chan::SendError(3));
    assert!(e.to_string().contains("receivers"));
}

// Receiver as an iterator, by value and by reference; len/is_empty/capacity.
#[test]
fn iterators_and_accessors() {
    let (tx, rx) = bounded(8);
    assert!(rx.is_empty());
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!((tx.len(), rx.len(), rx.capacity()), (5, 5, Some(8)));
    assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
    drop(tx);
    let mut by_ref = Vec::new();
    for v in &rx {
        by_ref.push(v);
    }
    assert_eq!(by_ref, [2, 3, 4]);
    let (tx, rx) = unbounded();
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), [1]);
}

#[test]
fn after_and_tick() {
    let t = Instant::now();
    let a = chan::after(Duration::from_millis(30));
    let at = a.recv().unwrap();
    assert!(at >= t + Duration::from_millis(30));
    assert!(a.recv().is_err(), "after sends once");
    let ticks = chan::tick(Duration::from_millis(10));
    let got: Vec<Instant> = ticks.iter().take(3).collect();
    assert!(got.windows(2).all(|w| w[1] > w[0]));
    assert!(t.elapsed() >= Duration::from_millis(60));
    // Inside a coroutine, in a select loop with a deadline.
    let n = corun::go!(|| {
        let ticks = chan::tick(Duration::from_millis(5));
        let stop = chan::after(Duration::from_millis(60));
        let mut n = 0;
        loop {
            corun::select! {
                recv(ticks) -> _ => n += 1,
                recv(stop) -> _ => return n,
            }
        }
    })
    .join()
    .unwrap();
    assert!((3..=13).contains(&n), "ticks in 60 ms at 5 ms: {n}");
}

// A coroutine parked in recv, send or select when its runtime shuts down unwinds
// (Cancelled) and takes its queue entries with it: the channel still works after.
#[test]
fn cancelled_waiters_leave_queues_consistent() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = bounded::<u32>(0);
    let (tx2, rx2) = bounded::<u32>(0);
    let hs = vec![
        {
            let rx = rx.clone();
            rt.spawn(move || {
                let _ = rx.recv();
            })
        },
        {
            let tx2 = tx2.clone();
            rt.spawn(move || {
                let _ = tx2.send(1);
            })
        },
        {
            let (rx, tx2) = (rx.clone(), tx2.clone());
            rt.spawn(move || {
                corun::select! {
                    recv(rx) -> _ => (),
                    send(tx2, 2) -> _ => (),
                }
            })
        },
    ];
    std::thread::sleep(Duration::from_millis(30));
    drop(rt);
    for h in hs {
        let err = h.join().unwrap_err();
        assert!(err.downcast_ref::<corun::Cancelled>().is_some());
    }
    // Nobody waits any more: a rendezvous try_send/try_recv finds no stale partner.
    assert!(tx.try_send(5).unwrap_err().is_full());
    assert!(rx2.try_recv().unwrap_err().is_empty());
    // And the channels still pair live partners.
    let t = std::thread::spawn(move || rx.recv().unwrap());
    tx.send(6).unwrap();
    assert_eq!(t.join().unwrap(), 6);
}
