//! `corun::Context`: deadlines and cancellation that interrupt waits (channels,
//! sockets, locks, sleep), the tree of contexts, `done()` in `select!`, and
//! `Sender::close`. Both from coroutines and from plain threads.

use corun::chan::{self, RecvError};
use corun::context::RecvCtxError;
use corun::net::{TcpListener, TcpStream};
use corun::sync::{Mutex, Semaphore};
use corun::{Context, ContextError};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::wait_for;

mod support;

const SHORT: Duration = Duration::from_millis(30);
/// Far beyond any test's run: a wait that lasts this long was not interrupted.
const FOREVER: Duration = Duration::from_secs(3600);
/// Generous bound for "returned soon after the deadline" on a loaded machine.
const SOON: Duration = Duration::from_secs(10);

/// Runs `f` in a coroutine and on a plain thread.
fn both<R: Send + 'static>(f: impl Fn() -> R + Send + Sync + 'static) -> [R; 2] {
    let f = Arc::new(f);
    let g = f.clone();
    let co = corun::spawn(move || g()).join().unwrap();
    let th = std::thread::spawn(move || f()).join().unwrap();
    [co, th]
}

fn timeout_ctx() -> Context {
    Context::background().with_timeout(SHORT).0
}

#[test]
fn deadline_interrupts_recv() {
    for (err, took) in both(|| {
        let (_tx, rx) = chan::bounded::<u8>(0);
        let t = Instant::now();
        (rx.recv_ctx(&timeout_ctx()), t.elapsed())
    }) {
        assert_eq!(
            err,
            Err(RecvCtxError::Context(ContextError::DeadlineExceeded))
        );
        assert!(took >= SHORT && took < SOON, "{took:?}");
    }
}

#[test]
fn cancel_interrupts_recv_and_send_keeps_the_value() {
    for (r, s) in both(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let (_tx, rx) = chan::bounded::<u8>(0);
        let (tx2, _rx2) = chan::bounded::<String>(0);
        let c2 = ctx.clone();
        let h = corun::spawn(move || (rx.recv_ctx(&c2), tx2.send_ctx("mine".into(), &c2)));
        corun::sleep(SHORT);
        cancel.cancel();
        let (r, s) = h.join().unwrap();
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        (r, s.map_err(|e| (e.context_error(), e.into_inner())))
    }) {
        assert_eq!(r, Err(RecvCtxError::Context(ContextError::Cancelled)));
        assert_eq!(s, Err((Some(ContextError::Cancelled), "mine".to_string())));
    }
}

#[test]
fn blocked_send_gives_its_value_back_at_the_deadline() {
    for r in both(|| {
        let (tx, _rx) = chan::bounded(1);
        tx.send(1).unwrap();
        tx.send_ctx(2, &timeout_ctx())
            .map_err(|e| (e.context_error(), e.into_inner()))
    }) {
        assert_eq!(r, Err((Some(ContextError::DeadlineExceeded), 2)));
    }
}

#[test]
fn recv_ctx_still_receives() {
    let (tx, rx) = chan::bounded(0);
    let (ctx, _cancel) = Context::background().with_timeout(FOREVER);
    let h = corun::spawn(move || rx.recv_ctx(&ctx));
    std::thread::sleep(SHORT);
    tx.send(7).unwrap();
    assert_eq!(h.join().unwrap(), Ok(7));
    drop(tx);
}

#[test]
fn deadline_interrupts_socket_read_and_accept() {
    for (read, accept, took) in both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_peer, _) = l.accept().unwrap();
        let t = Instant::now();
        let read = s.read_ctx(&mut [0u8; 8], &timeout_ctx()).unwrap_err();
        let accept = l.accept_ctx(&timeout_ctx()).unwrap_err();
        (read, accept, t.elapsed())
    }) {
        for e in [read, accept] {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            assert_eq!(
                ContextError::from_io(&e),
                Some(ContextError::DeadlineExceeded)
            );
        }
        assert!(took >= 2 * SHORT && took < SOON, "{took:?}");
    }
}

#[test]
fn cancel_interrupts_socket_read_write_and_accept() {
    for errs in both(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let s = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let (_peer, _) = l.accept().unwrap(); // never reads nor writes
        let (c, s2) = (ctx.clone(), s.clone());
        let read = corun::spawn(move || s2.read_ctx(&mut [0u8; 8], &c).unwrap_err());
        let (c, l2) = (ctx.clone(), l.clone());
        let accept = corun::spawn(move || l2.accept_ctx(&c).unwrap_err());
        let c = ctx.clone();
        let write = corun::spawn(move || {
            let big = vec![0u8; 1 << 20];
            loop {
                if let Err(e) = s.write_ctx(&big, &c) {
                    break e; // the buffers filled up, then the cancel came
                }
            }
        });
        wait_for("the three to wait", SOON, || {
            corun::dump().matches("IO wait").count() >= 3
        });
        cancel.cancel();
        [read, accept, write].map(|h| h.join().unwrap())
    }) {
        for e in errs {
            assert_eq!(
                ContextError::from_io(&e),
                Some(ContextError::Cancelled),
                "{e}"
            );
        }
    }
}

#[test]
fn socket_forms_work_while_the_context_lives() {
    let ctx = Context::background().with_timeout(FOREVER).0;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let c = ctx.clone();
    let server = corun::spawn(move || {
        let (s, _) = l.accept_ctx(&c).unwrap();
        let mut buf = [0u8; 5];
        let n = s.read_ctx(&mut buf, &c).unwrap();
        buf[..n].to_vec()
    });
    let s = TcpStream::connect_ctx(addr, &ctx).unwrap();
    s.write_all_ctx(b"hello", &ctx).unwrap();
    assert_eq!(server.join().unwrap(), b"hello");
    // A done context fails at once, even where the operation could proceed.
    let (done, cancel) = ctx.with_cancel();
    cancel.cancel();
    let e = TcpStream::connect_ctx(addr, &done).unwrap_err();
    assert_eq!(ContextError::from_io(&e), Some(ContextError::Cancelled));
    let mut s = s;
    s.write_all(b"still usable").unwrap();
}

#[test]
fn cancelled_parent_cancels_its_children() {
    let (parent, cancel) = Context::background().with_cancel();
    let (child, _c1) = parent.with_cancel();
    let (grandchild, _c2) = child.with_timeout(FOREVER);
    let (sibling, sibling_cancel) = parent.with_cancel();
    sibling_cancel.cancel(); // a child's cancel does not reach up or sideways
    assert_eq!(parent.err(), None);
    assert_eq!(child.err(), None);
    assert_eq!(sibling.err(), Some(ContextError::Cancelled));

    let g = grandchild.clone();
    let waiter = corun::spawn(move || {
        let (_tx, rx) = chan::bounded::<u8>(0);
        rx.recv_ctx(&g)
    });
    std::thread::sleep(SHORT);
    cancel.cancel();
    cancel.cancel(); // idempotent
    assert_eq!(
        waiter.join().unwrap(),
        Err(RecvCtxError::Context(ContextError::Cancelled))
    );
    for c in [&parent, &child, &grandchild] {
        assert_eq!(c.err(), Some(ContextError::Cancelled));
        assert_eq!(c.done().recv(), Err(RecvError));
    }
    // Derived from a done context: born done.
    assert_eq!(child.with_cancel().0.err(), Some(ContextError::Cancelled));
}

#[test]
fn parent_deadline_reaches_children() {
    let (parent, _) = Context::background().with_timeout(SHORT);
    let (child, _) = parent.with_timeout(FOREVER);
    assert_eq!(child.deadline(), parent.deadline());
    let (_tx, rx) = chan::bounded::<u8>(0);
    assert_eq!(
        rx.recv_ctx(&child),
        Err(RecvCtxError::Context(ContextError::DeadlineExceeded))
    );
    assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn context_interrupts_lock_acquisition() {
    for (lock, permit) in both(|| {
        let m = Mutex::new(0);
        let held = m.lock();
        let lock = m.lock_ctx(&timeout_ctx()).map(|_| ());
        drop(held);
        let s = Semaphore::new(0);
        let permit = s.acquire_ctx(&timeout_ctx()).map(|_| ());
        (lock, permit)
    }) {
        assert_eq!(lock, Err(ContextError::DeadlineExceeded));
        assert_eq!(permit, Err(ContextError::DeadlineExceeded));
    }
}

#[test]
fn cancel_interrupts_a_lock_wait_and_the_lock_still_works() {
    let m = Arc::new(Mutex::new(0u32));
    let held = m.lock();
    let (ctx, cancel) = Context::background().with_cancel();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (m, ctx) = (m.clone(), ctx.clone());
            corun::spawn(move || m.lock_ctx(&ctx).map(|_| ()))
        })
        .collect();
    let (m2, ctx2) = (m.clone(), ctx.clone());
    let thread = std::thread::spawn(move || m2.lock_ctx(&ctx2).map(|_| ()));
    std::thread::sleep(SHORT);
    cancel.cancel();
    for h in waiters {
        assert_eq!(h.join().unwrap(), Err(ContextError::Cancelled));
    }
    assert_eq!(thread.join().unwrap(), Err(ContextError::Cancelled));
    drop(held);
    // The queue is clean: plain locking from many coroutines still works.
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            corun::spawn(move || (0..100).for_each(|_| *m.lock() += 1))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock(), 800);
    assert!(m.lock_ctx(&Context::background()).is_ok());
}

#[test]
fn context_interrupts_sleep() {
    for (deadline, cancelled) in both(|| {
        let t = Instant::now();
        let deadline = corun::sleep_ctx(FOREVER, &timeout_ctx());
        assert!(t.elapsed() < SOON);
        let (ctx, cancel) = Context::background().with_cancel();
        let h = std::thread::spawn(move || {
            std::thread::sleep(SHORT);
            cancel.cancel();
        });
        let cancelled = corun::sleep_ctx(FOREVER, &ctx);
        h.join().unwrap();
        (deadline, cancelled)
    }) {
        assert_eq!(deadline, Err(ContextError::DeadlineExceeded));
        assert_eq!(cancelled, Err(ContextError::Cancelled));
    }
    assert_eq!(corun::sleep_ctx(SHORT, &Context::background()), Ok(()));
}

#[test]
fn done_works_in_select() {
    for got in both(|| {
        let (_tx, work) = chan::bounded::<u8>(0);
        // At the deadline: the timer behind done() closes it.
        let ctx = timeout_ctx();
        let by_deadline = corun::select! {
            recv(work) -> _ => None,
            recv(ctx.done()) -> r => Some((r, ctx.err())),
        };
        // On cancel.
        let (ctx, cancel) = Context::background().with_cancel();
        let done = ctx.done().clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(SHORT);
            cancel.cancel();
        });
        let by_cancel = corun::select! {
            recv(work) -> _ => None,
            recv(done) -> r => Some((r, ctx.err())),
        };
        h.join().unwrap();
        [by_deadline, by_cancel]
    }) {
        assert_eq!(
            got,
            [
                Some((Err(RecvError), Some(ContextError::DeadlineExceeded))),
                Some((Err(RecvError), Some(ContextError::Cancelled))),
            ]
        );
    }
    // The background context's never closes.
    let bg = Context::background();
    assert!(bg.done().try_recv().unwrap_err().is_empty());
    assert!(bg.done().recv_timeout(SHORT).unwrap_err().is_timeout());
}

#[test]
fn close_while_senders_remain() {
    let (tx, rx) = chan::bounded(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(tx2.close());
    assert!(!tx.close(), "closing twice does nothing");
    assert_eq!(tx.send(3).unwrap_err().into_inner(), 3);
    assert_eq!(tx2.try_send(4).unwrap_err().into_inner(), 4);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
    let closed = corun::select! {
        recv(rx) -> r => r.is_err(),
        default(SOON) => false,
    };
    assert!(closed);
    drop((tx, tx2));
}

#[test]
fn close_wakes_waiting_receivers_and_senders() {
    let (tx, rx) = chan::bounded::<String>(0);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            corun::spawn(move || rx.recv())
        })
        .collect();
    let (ftx, _frx) = chan::bounded::<String>(0); // a full rendezvous: nobody receives
    let senders: Vec<_> = (0..3)
        .map(|i| {
            let ftx = ftx.clone();
            corun::spawn(move || ftx.send(format!("v{i}")).map_err(|e| e.into_inner()))
        })
        .collect();
    let thread_rx = rx.clone();
    let thread = std::thread::spawn(move || thread_rx.recv());
    std::thread::sleep(SHORT);
    assert!(tx.close());
    assert!(ftx.close());
    for h in receivers {
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
    assert_eq!(thread.join().unwrap(), Err(RecvError));
    for (i, h) in senders.into_iter().enumerate() {
        assert_eq!(
            h.join().unwrap(),
            Err(format!("v{i}")),
            "the value comes back"
        );
    }
}

#[test]
fn many_waiters_share_one_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (_tx, rx) = chan::bounded::<u8>(0);
    let hs: Vec<_> = (0..200)
        .map(|i| {
            let (ctx, rx) = (ctx.clone(), rx.clone());
            corun::spawn(move || match i % 2 {
                0 => rx.recv_ctx(&ctx).is_err(),
                _ => corun::sleep_ctx(FOREVER, &ctx).is_err(),
            })
        })
        .collect();
    wait_for("the waiters to park", SOON, || {
        corun::dump().matches("chan receive").count() >= 50
    });
    cancel.cancel();
    assert!(hs.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn a_long_chain_of_contexts_drops_and_cancels_without_recursion() {
    // In a coroutine (a 256 KiB stack): recursion over the chain would overflow.
    corun::spawn(|| {
        let (root, cancel) = Context::background().with_cancel();
        let mut ctx = root.clone();
        for i in 0..20_000 {
            ctx = ctx.with_cancel().0;
            if i % 2_000 == 0 {
                corun::yield_now(); // no hog warning
            }
        }
        cancel.cancel();
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        drop(ctx);
        let mut ctx = root.with_timeout(FOREVER).0;
        for i in 0..20_000 {
            ctx = ctx.with_cancel().0;
            if i % 2_000 == 0 {
                corun::yield_now(); // no hog warning
            }
        }
        drop(ctx);
        assert_eq!(root.err(), Some(ContextError::Cancelled));
    })
    .join()
    .unwrap();
}

#[test]
fn unix_socket_forms_and_the_io_adapter() {
    use corun::context::WithContext;
    use corun::net::{UnixListener, UnixStream};
    use std::io::{BufRead, BufReader, Read};
    for errs in both(|| {
        let path = std::env::temp_dir().join(format!(
            "corun-ctx-{}-{:?}.sock",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let accept = l.accept_ctx(&timeout_ctx()).unwrap_err();
        let (a, b) = UnixStream::pair().unwrap();
        let read = b.read_ctx(&mut [0u8; 4], &timeout_ctx()).unwrap_err();
        // The adapter: a line arrives whole, the next one never ends.
        let ctx = timeout_ctx();
        a.write_all_ctx(b"one\ntwo", &ctx).unwrap();
        let mut lines = BufReader::new(WithContext::new(&b, &ctx));
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, "one\n");
        let mut rest = Vec::new();
        let adapter = lines.read_to_end(&mut rest).unwrap_err();
        assert_eq!(rest, b"two");
        std::fs::remove_file(&path).unwrap();
        [accept, read, adapter]
    }) {
        for e in errs {
            assert_eq!(
                ContextError::from_io(&e),
                Some(ContextError::DeadlineExceeded),
                "{e}"
            );
        }
    }
}
