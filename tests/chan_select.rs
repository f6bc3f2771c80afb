//! select!: Go's select3/select5 ideas (fairness, every arm shape, default), and
//! doubleselect.go (no value delivered twice), many arms, timeouts, and a 1,000 x
//! 1,000 stress with a checksum.

use corun::chan::{bounded, unbounded, Receiver, Sender};
use std::collections::HashSet;
use std::time::{Duration, Instant};

// select5/select3: with several arms ready, each is chosen about equally often.
#[test]
fn fair_among_ready_arms() {
    let (t0, r0) = unbounded::<u8>();
    let (t1, r1) = unbounded::<u8>();
    let (t2, r2) = unbounded::<u8>();
    const N: usize = 30_000;
    for _ in 0..N {
        t0.send(0).unwrap();
        t1.send(1).unwrap();
        t2.send(2).unwrap();
    }
    let mut hits = [0usize; 3];
    for _ in 0..N {
        let i = corun::select! {
            recv(r0) -> v => v.unwrap(),
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap(),
        };
        hits[i as usize] += 1;
    }
    for h in hits {
        assert!(h > N / 3 - N / 15 && h < N / 3 + N / 15, "unfair: {hits:?}");
    }
}

// select3: default runs when nothing is ready, never when something is.
#[test]
fn default_arm() {
    let (tx, rx) = bounded::<i32>(1);
    let r = corun::select! { recv(rx) -> _ => "recv", default => "default" };
    assert_eq!(r, "default");
    let r = corun::select! { send(tx, 1) -> _ => "sent", default => "default" };
    assert_eq!(r, "sent");
    let r = corun::select! { send(tx, 2) -> _ => "sent", default => "default" };
    assert_eq!(r, "default", "full");
    let r = corun::select! { recv(rx) -> v => v.unwrap(), default => -1 };
    assert_eq!(r, 1);
    // Only a default: runs it.
    let r = corun::select! { default => 5 };
    assert_eq!(r, 5);
}

// A send and a recv arm on the same rendezvous channel in one select never match
// each other; a partner completes one of them.
#[test]
fn same_channel_both_ways() {
    let (tx, rx) = bounded::<u32>(0);
    let (tx2, rx2) = (tx.clone(), rx.clone());
    let h = corun::go!(move || {
        corun::select! {
            send(tx2, 1) -> r => { r.unwrap(); "sent" }
            recv(rx2) -> r => { assert_eq!(r.unwrap(), 2); "received" }
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rx.recv().unwrap(), 1);
    assert_eq!(h.join().unwrap(), "sent");
    let _ = tx;
}

// doubleselect.go: many senders select over several channels; receivers on each
// channel; every value arrives exactly once.
#[test]
fn double_select_no_duplicates() {
    const SENDERS: u64 = 8;
    const PER: u64 = 2000;
    let chans: Vec<(Sender<u64>, Receiver<u64>)> = (0..4).map(|_| bounded(0)).collect();
    let (out_tx, out_rx) = unbounded::<u64>();
    let mut hs = Vec::new();
    for s in 0..SENDERS {
        let c: Vec<Sender<u64>> = chans.iter().map(|(t, _)| t.clone()).collect();
        hs.push(corun::go!(move || {
            for i in 0..PER {
                let v = s * PER + i;
                corun::select! {
                    send(c[0], v) -> r => r.unwrap(),
                    send(c[1], v) -> r => r.unwrap(),
                    send(c[2], v) -> r => r.unwrap(),
                    send(c[3], v) -> r => r.unwrap(),
                }
            }
        }));
    }
    let mut recvs = Vec::new();
    for (t, r) in chans {
        drop(t);
        let out = out_tx.clone();
        recvs.push(corun::go!(move || r
            .iter()
            .for_each(|v| out.send(v).unwrap())));
    }
    drop(out_tx);
    hs.into_iter().for_each(|h| h.join().unwrap());
    recvs.into_iter().for_each(|h| h.join().unwrap());
    let mut seen = HashSet::new();
    for v in out_rx.iter() {
        assert!(seen.insert(v), "value {v} received twice");
    }
    assert_eq!(seen.len() as u64, SENDERS * PER);
}

// Eight arms of different element types, waiting until the one that gets a value.
#[test]
fn many_arms_of_different_types() {
    let (t0, r0) = bounded::<u8>(0);
    let (t1, r1) = bounded::<u16>(0);
    let (t2, r2) = bounded::<u32>(0);
    let (t3, r3) = bounded::<u64>(0);
    let (t4, r4) = bounded::<String>(0);
    let (t5, r5) = bounded::<Vec<u8>>(0);
    let (t6, r6) = bounded::<char>(0);
    let (_t7, r7) = bounded::<()>(0);
    let waiter = corun::go!(move || {
        let mut got = Vec::new();
        for _ in 0..7 {
            let s: String = corun::select! {
                recv(r0) -> v => format!("u8 {}", v.unwrap()),
                recv(r1) -> v => format!("u16 {}", v.unwrap()),
                recv(r2) -> v => format!("u32 {}", v.unwrap()),
                recv(r3) -> v => format!("u64 {}", v.unwrap()),
                recv(r4) -> v => v.unwrap(),
                recv(r5) -> v => format!("{:?}", v.unwrap()),
                recv(r6) -> v => v.unwrap().to_string(),
                recv(r7) -> _ => unreachable!(),
            };
            got.push(s);
        }
        got
    });
    t3.send(3).unwrap();
    t0.send(0).unwrap();
    t4.send("four".into()).unwrap();
    t2.send(2).unwrap();
    t6.send('6').unwrap();
    t1.send(1).unwrap();
    t5.send(vec![5]).unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        ["u64 3", "u8 0", "four", "u32 2", "6", "u16 1", "[5]"]
    );
}

// Parked selects: a send arm and recv arms, from a plain thread and coroutines.
#[test]
fn parked_select_send_arm_completes() {
    let (tx, rx) = bounded::<u32>(0);
    let (_unused_tx, unused_rx) = bounded::<u32>(0);
    let t = std::thread::spawn(move || {
        corun::select! {
            send(tx, 42) -> r => { r.unwrap(); true }
            recv(unused_rx) -> _ => false,
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rx.recv().unwrap(), 42);
    assert!(t.join().unwrap());
}

#[test]
fn select_timeout() {
    let (_tx, rx) = bounded::<u8>(0);
    let t = Instant::now();
    let r = corun::select! {
        recv(rx) -> _ => "value",
        default(Duration::from_millis(30)) => "timeout",
    };
    assert_eq!(r, "timeout");
    assert!(t.elapsed() >= Duration::from_millis(30));
    // In a coroutine, and a value that beats the timeout.
    let (tx, rx) = bounded::<u8>(0);
    let h = corun::go!(move || {
        corun::select! {
            recv(rx) -> v => v.unwrap(),
            default(Duration::from_secs(10)) => 0,
        }
    });
    std::thread::sleep(Duration::from_millis(10));
    tx.send(9).unwrap();
    assert_eq!(h.join().unwrap(), 9);
    // A timed-out select leaves nothing queued.
    let (tx, rx) = bounded::<u8>(0);
    for _ in 0..50 {
        corun::select! { recv(rx) -> _ => panic!(), default(Duration::from_micros(20)) => () }
    }
    assert!(tx.try_send(1).is_err());
}

// Closing a channel completes a parked select's recv arm with Err, and a send arm
// gets its value back.
#[test]
fn select_sees_close() {
    let (tx, rx) = bounded::<u8>(0);
    let (tx2, rx2) = bounded::<String>(0);
    let h = corun::go!(move || {
        corun::select! {
            recv(rx) -> r => r.is_err(),
            send(tx2, "kept".to_string()) -> _ => false,
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(tx);
    assert!(h.join().unwrap());
    drop(rx2);
    let (tx3, rx3) = bounded::<String>(0);
    let h = corun::go!(move || corun::select! {
        send(tx3, "mine".to_string()) -> r => r.unwrap_err().into_inner(),
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(rx3);
    assert_eq!(h.join().unwrap(), "mine");
}

// 1,000 sender coroutines x 1,000 receiver coroutines, 10 values each, over one
// rendezvous and one buffered channel chosen by select; checksum of everything.
#[test]
fn stress_1000_by_1000() {
    const N: u64 = 1000;
    const EACH: u64 = 10;
    let t = Instant::now();
    let (sync_tx, sync_rx) = bounded::<u64>(0);
    let (buf_tx, buf_rx) = bounded::<u64>(64);
    let (sum_tx, sum_rx) = unbounded::<(u64, u64)>();
    let mut hs = Vec::new();
    for s in 0..N {
        let (a, b) = (sync_tx.clone(), buf_tx.clone());
        hs.push(corun::go!(move || {
            for i in 0..EACH {
                let v = s * EACH + i;
                corun::select! {
                    send(a, v) -> r => r.unwrap(),
                    send(b, v) -> r => r.unwrap(),
                }
            }
        }));
    }
    drop((sync_tx, buf_tx));
    for r in 0..N {
        let (a, b, out) = (sync_rx.clone(), buf_rx.clone(), sum_tx.clone());
        hs.push(corun::go!(move || {
            let (mut sum, mut n) = (0, 0);
            for _ in 0..EACH {
                let v = if r % 3 == 0 {
                    a.recv().or_else(|_| b.recv()).unwrap()
                } else {
                    corun::select! {
                        recv(a) -> v => v.or_else(|_| b.recv()).unwrap(),
                        recv(b) -> v => v.or_else(|_| a.recv()).unwrap(),
                    }
                };
                sum += v;
                n += 1;
            }
            out.send((sum, n)).unwrap();
        }));
    }
    drop((sync_rx, buf_rx, sum_tx));
    let (sum, n) = sum_rx.iter().fold((0, 0), |(s, c), (a, b)| (s + a, c + b));
    hs.into_iter().for_each(|h| h.join().unwrap());
    let total = N * EACH;
    assert_eq!(n, total);
    assert_eq!(sum, total * (total - 1) / 2);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
}

// Threads and coroutines selecting on the same channels.
#[test]
fn select_threads_and_coroutines() {
    let (tx, rx) = unbounded::<u64>();
    let (tx2, rx2) = bounded::<u64>(0);
    let mut hs = Vec::new();
    for k in 0..4u64 {
        let (rx, rx2) = (rx.clone(), rx2.clone());
        let body = move || {
            let mut s = 0;
            loop {
                corun::select! {
                    recv(rx) -> v => match v { Ok(v) => s += v, Err(_) => break },
                    recv(rx2) -> v => match v { Ok(v) => s += v, Err(_) => break },
                }
            }
            // Drain whatever is left on the other channel.
            s + rx.iter().sum::<u64>() + rx2.iter().sum::<u64>()
        };
        if k % 2 == 0 {
            hs.push(std::thread::spawn(body));
        } else {
            let h = corun::go!(body);
            hs.push(std::thread::spawn(move || h.join().unwrap()));
        }
    }
    drop((rx, rx2));
    for i in 0..2000u64 {
        if i % 2 == 0 {
            tx.send(i).unwrap();
        } else {
            tx2.send(i).unwrap();
        }
    }
    drop((tx, tx2));
    let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (0..2000).sum::<u64>());
}
