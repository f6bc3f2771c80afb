//! Model checks of the wait-queue protocol with loom: the public API and the production
//! code of `channel.rs`, `waiters.rs` and `select.rs`, with loom threads standing in for
//! coroutines (`waiters::park`). A lost wake-up leaves a thread parked forever, which
//! loom reports as a deadlock; a slot read without the waker's CAS ordering it is a
//! data race on the slot's `UnsafeCell`; a lost or duplicated value fails an assertion.
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib
//! chan::loom_tests` (about 6 s). An interrupt (a context's cancel) firing is
//! modelled; not modelled: deadlines (loom has no clock), coroutine cancellation,
//! random `select!` poll order (fixed under loom). See docs/architecture.md.

use super::*;
use loom::thread;

/// Runs `f` under every interleaving loom explores, with a new `bounded(cap)` channel.
fn with_chan(cap: usize, f: impl Fn(Sender<i32>, Receiver<i32>) + Sync + Send + 'static) {
    loom::model(move || {
        let (tx, rx) = bounded::<i32>(cap);
        f(tx, rx)
    });
}

/// Two channels of capacity `cap`, a thread sending 1 on the first and one sending 2 on
/// the second, and a two-arm select over them: the arm that won (its value), the
/// receivers and the senders.
fn race_two_senders(cap: usize) -> (i32, [Receiver<i32>; 2], [thread::JoinHandle<()>; 2]) {
    let (tx1, rx1) = bounded::<i32>(cap);
    let (tx2, rx2) = bounded::<i32>(cap);
    let a = thread::spawn(move || tx1.send(1).unwrap());
    let b = thread::spawn(move || tx2.send(2).unwrap());
    let won = crate::select! {
        recv(rx1) -> v => { assert_eq!(v, Ok(1)); 1 },
        recv(rx2) -> v => { assert_eq!(v, Ok(2)); 2 },
    };
    (won, [rx1, rx2], [a, b])
}

/// Rendezvous: the value goes from the sender's slot to the receiver exactly once,
/// whichever side parks, and both return.
#[test]
fn rendezvous_one_value() {
    with_chan(0, |tx, rx| {
        let t = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(rx.recv(), Ok(7));
        t.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// bounded(1), two senders, one receiver: one sender may park on a full buffer and
/// be moved into it by the receiver's `take`; each value is received once.
#[test]
fn bounded1_two_senders() {
    with_chan(1, |tx, rx| {
        let tx2 = tx.clone();
        let senders = [(tx, 1), (tx2, 2)].map(|(tx, v)| thread::spawn(move || tx.send(v).unwrap()));
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        for t in senders {
            t.join().unwrap();
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// Close (the last sender dropped) racing a parked receiver: it gets the buffered
/// values, in order, then `Err`.
#[test]
fn close_wakes_parked_receiver() {
    with_chan(2, |tx, rx| {
        let t = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        t.join().unwrap();
    });
}

/// `Sender::close` while another sender lives, racing a parked receiver and a
/// parked sender: the receiver gets the buffered value then `Err`, the sender its
/// value back.
#[test]
fn close_with_a_sender_left() {
    with_chan(1, |tx, rx| {
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        let t = thread::spawn(move || tx2.send(2).map_err(|e| e.into_inner()));
        let c = thread::spawn(move || {
            assert!(tx.close());
            tx // still alive after the close
        });
        assert_eq!(rx.recv(), Ok(1));
        let second = rx.recv();
        let sent = t.join().unwrap();
        // The second value got in before the close, or came back to its sender.
        match sent {
            Ok(()) => assert_eq!(second, Ok(2)),
            Err(v) => assert_eq!((v, second), (2, Err(RecvError))),
        }
        let _tx = c.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// An interrupt (a context's cancel) fired racing a receiver that waits with it:
/// the receiver always returns, with `Timeout`.
#[test]
fn interrupt_wakes_parked_receiver() {
    use crate::sched::interrupt::{Interrupt, Until};
    with_chan(0, |_tx, rx| {
        let intr = std::sync::Arc::new(Interrupt::new());
        let i2 = intr.clone();
        let t = thread::spawn(move || assert!(i2.fire(1)));
        let until = Until {
            deadline: None,
            interrupt: Some(&intr),
        };
        assert_eq!(rx.recv_until(until), Err(RecvTimeoutError::Timeout));
        t.join().unwrap();
    });
}

/// The last receiver dropped racing a parked rendezvous sender: the sender wakes and
/// gets its value back.
#[test]
fn close_wakes_parked_sender() {
    with_chan(0, |tx, rx| {
        let t = thread::spawn(move || tx.send(7));
        drop(rx);
        assert_eq!(t.join().unwrap(), Err(SendError(7)));
    });
}

/// A two-arm select on rendezvous channels racing a sender on each arm: exactly one
/// arm wins with its own value; the other value stays with its (then parked) sender
/// and a plain `recv` gets it afterwards.
#[test]
fn select_two_rendezvous_senders() {
    loom::model(|| {
        let (won, [rx1, rx2], [a, b]) = race_two_senders(0);
        let other = if won == 1 { &rx2 } else { &rx1 };
        assert_eq!(other.recv(), Ok(3 - won));
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx1.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx2.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// The same with buffered channels, whose senders never wait: a sender that finds
/// the select's entry already won (or its CAS fails) buffers its value instead, so
/// the losing value is still in its channel once both senders are done.
#[test]
fn select_two_buffered_senders() {
    loom::model(|| {
        let (won, [rx1, rx2], [a, b]) = race_two_senders(1);
        a.join().unwrap();
        b.join().unwrap();
        let (winner, other) = if won == 1 { (&rx1, &rx2) } else { (&rx2, &rx1) };
        assert_eq!(other.try_recv(), Ok(3 - won));
        assert_eq!(winner.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(other.try_recv(), Err(TryRecvError::Disconnected));
    });
}
