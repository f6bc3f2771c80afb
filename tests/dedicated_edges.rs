//! Dedicated threads at their edges: shutdown, slot reuse, sockets handed on,
//! timers, metrics, and the threads corun makes from one (found by review; each
//! test failed before its fix).

use corun::chan;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn gettid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

struct RecordTid(Arc<AtomicI64>);
impl Drop for RecordTid {
    fn drop(&mut self) {
        self.0.store(gettid(), Ordering::SeqCst);
    }
}

/// At shutdown a dedicated thread cancels its own coroutine only: a migratable
/// coroutine or an unstarted one waiting in the injector is the workers' to run or
/// drop, never the dedicated thread's.
#[test]
fn shutdown_runs_no_other_coroutine_on_a_dedicated_thread() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (_keep_tx, keep_rx) = chan::bounded::<()>(0);
    let _own = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), move || {
            tid_tx.send(gettid()).unwrap();
            let _ = keep_rx.recv();
        })
        .unwrap();
    let ded_tid = tid_rx.recv().unwrap();

    // A migratable coroutine, started and parked on a channel.
    let mig_tid = Arc::new(AtomicI64::new(0));
    let (wake_tx, wake_rx) = chan::bounded::<u32>(1);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let m = mig_tid.clone();
    // SAFETY: the coroutine holds no thread-local or !Send value across a wait.
    let _mig = unsafe { corun::Builder::new().migratable() }
        .spawn_on(rt.handle(), move || {
            let _g = RecordTid(m);
            started_tx.send(()).unwrap();
            let _ = wake_rx.recv();
            corun::yield_now();
        })
        .unwrap();
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));

    // Block the only worker in a system call.
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel();
    let _blk = rt.spawn(move || {
        blocked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    });
    blocked_rx.recv().unwrap();
    // Wake the migratable one from a plain thread: it goes to the injector.
    wake_tx.send(1).unwrap();
    // An unstarted coroutine from outside: to the injector as well.
    let clo_tid = Arc::new(AtomicI64::new(0));
    let guard = RecordTid(clo_tid.clone());
    let _un = rt.spawn(move || drop(guard));
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    let m = mig_tid.load(Ordering::SeqCst);
    let c = clo_tid.load(Ordering::SeqCst);
    eprintln!("dedicated tid {ded_tid}; migratable coroutine's guard dropped on {m}; unstarted closure dropped on {c}");
    assert_ne!(
        m, ded_tid,
        "a migratable coroutine ran on the dedicated thread"
    );
    assert_ne!(
        c, ded_tid,
        "another coroutine's closure was dropped on the dedicated thread"
    );
}

struct BlockOnDrop;
impl Drop for BlockOnDrop {
    fn drop(&mut self) {
        // A wait that completes even while cancelled (Cancel::Ignore); its wake
        // comes from a pool thread.
        corun::blocking::blocking(|| std::thread::sleep(Duration::from_millis(200)));
    }
}

/// A migratable coroutine that parks again while it unwinds at shutdown is woken
/// on a worker (a dedicated thread never became its home), so `Runtime::drop`
/// returns.
#[test]
fn shutdown_strands_no_migratable_coroutine_on_a_dedicated_thread() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (_keep_tx, keep_rx) = chan::bounded::<()>(0);
    let _own = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), move || {
            tid_tx.send(gettid()).unwrap();
            let _ = keep_rx.recv();
        })
        .unwrap();
    tid_rx.recv().unwrap();
    let (wake_tx, wake_rx) = chan::bounded::<u32>(1);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    // SAFETY: the coroutine holds no thread-local or !Send value across a wait.
    let _mig = unsafe { corun::Builder::new().migratable() }
        .spawn_on(rt.handle(), move || {
            let _g = BlockOnDrop;
            started_tx.send(()).unwrap();
            let _ = wake_rx.recv();
            corun::yield_now();
        })
        .unwrap();
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel();
    let _blk = rt.spawn(move || {
        blocked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    blocked_rx.recv().unwrap();
    wake_tx.send(1).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let h = rt.handle().clone();
    std::thread::spawn(move || {
        drop(rt);
        done_tx.send(()).unwrap();
    });
    if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let m = h.metrics();
        eprintln!(
            "dump after 10 s:\n{}\ndedicated inbox lens: {:?}",
            h.dump(),
            m.dedicated.iter().map(|d| d.inbox).collect::<Vec<_>>()
        );
        panic!("Runtime::drop did not return within 10 s");
    }
}

/// A socket first waited on by a dedicated coroutine is registered with that
/// thread's poller; handed to a worker's coroutine, it still wakes its reader after
/// the dedicated thread has ended (the retired poller's sockets move on).
#[test]
fn a_socket_handed_on_by_a_dedicated_thread_still_wakes_its_reader() {
    hand_a_socket_on(corun::Builder::new().dedicated_thread());
}

/// The same hand-off between ordinary coroutines (the control).
#[test]
fn a_socket_handed_on_by_a_coroutine_wakes_its_reader() {
    hand_a_socket_on(corun::Builder::new());
}

/// A coroutine built by `first` waits on a socket once (binding it to its thread's
/// poller), then hands it to a coroutine on a worker, which must see data written
/// after the first one has ended.
fn hand_a_socket_on(first: corun::Builder) {
    use std::io::{Read, Write};
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (a, mut b) = corun::net::UnixStream::pair().unwrap();
    let (sock_tx, sock_rx) = chan::bounded::<corun::net::UnixStream>(1);
    let own = first
        .spawn_on(rt.handle(), move || {
            let mut a = a;
            // One wait here binds it to this thread's poller.
            a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let mut buf = [0u8; 1];
            assert!(a.read(&mut buf).is_err());
            a.set_read_timeout(None).unwrap();
            sock_tx.send(a).unwrap();
        })
        .unwrap();
    own.join().unwrap();
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let reader = rt.spawn(move || {
        let mut a = sock_rx.recv().unwrap();
        let mut buf = [0u8; 1];
        let n = a.read(&mut buf).unwrap();
        got_tx.send(n).unwrap();
    });
    // Let the first coroutine's thread exit and the reader park.
    std::thread::sleep(Duration::from_millis(300));
    eprintln!(
        "dedicated threads running: {}",
        rt.metrics().dedicated_threads
    );
    b.write_all(b"x").unwrap();
    let r = got_rx.recv_timeout(Duration::from_secs(5));
    assert!(r.is_ok(), "the reader on a worker never saw the data");
    reader.join().unwrap();
    drop(rt);
}

/// A dedicated thread fires only its own timers: a portable timer that holds the
/// last reference to a finished migratable coroutine never drops that coroutine's
/// result there.
#[test]
fn no_other_coroutine_result_is_dropped_on_a_dedicated_thread() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let own = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), move || {
            tid_tx.send(gettid()).unwrap();
            while !st.load(Ordering::Relaxed) {
                corun::sleep(Duration::from_micros(50));
            }
        })
        .unwrap();
    let ded = tid_rx.recv().unwrap();
    let tids: Vec<Arc<AtomicI64>> = (0..300).map(|_| Arc::new(AtomicI64::new(0))).collect();
    let mut txs = Vec::new();
    for (i, t) in tids.iter().enumerate() {
        let t = t.clone();
        let (tx, rx) = chan::bounded::<u8>(1);
        txs.push(tx);
        // SAFETY: the coroutine holds no thread-local or !Send value across a wait.
        let h = unsafe { corun::Builder::new().migratable() }
            .spawn_on(rt.handle(), move || {
                // Woken early by the send below: its timer entry stays queued,
                // holding a reference, until the deadline.
                let _ = rx.recv_timeout(Duration::from_millis(30 + (i as u64 % 50)));
                RecordTid(t)
            })
            .unwrap();
        drop(h);
    }
    std::thread::sleep(Duration::from_millis(10));
    for tx in &txs {
        tx.send(1).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    own.join().unwrap();
    let on_ded = tids
        .iter()
        .filter(|t| t.load(Ordering::SeqCst) == ded)
        .count();
    eprintln!(
        "results dropped on the dedicated thread: {on_ded} of {}",
        tids.len()
    );
    drop(rt);
    assert_eq!(on_ded, 0);
}

/// A dedicated thread's metrics count it busy only while it runs (not while it
/// sleeps, nor after it has ended).
#[test]
fn a_dedicated_thread_asleep_is_not_counted_busy() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let h = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), || corun::sleep(Duration::from_millis(300)))
        .unwrap();
    h.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let m = rt.metrics();
    eprintln!(
        "slot 0 busy {:?} (slept 300 ms, then exited 300 ms ago); live threads {}",
        m.dedicated[0].busy, m.dedicated_threads
    );
    assert!(m.dedicated[0].busy < Duration::from_millis(100));
}

fn sigblk(tid: i64) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap_or(0)
}

fn block_sigusr1() {
    // SAFETY: a zeroed sigset_t is valid to initialise; the mask changes only this
    // (dedicated) thread's.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

const USR1: u64 = 1 << (libc::SIGUSR1 - 1);

/// The trace writer (a bound reached on a dedicated thread) runs on a thread the
/// template made: it does not inherit the dedicated thread's signal mask.
#[test]
fn the_trace_writer_does_not_inherit_a_dedicated_threads_signal_mask() {
    let path = std::env::temp_dir().join(format!("corun-review-{}.json", std::process::id()));
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let rt = corun::Runtime::builder()
        .workers(1)
        .trace(&path)
        .trace_limit(Duration::from_secs(60), 300)
        .warnings(corun::Warnings::Callback(std::sync::Arc::new(
            move |line: &str| {
                let me = gettid();
                let name = std::thread::current().name().unwrap_or("?").to_owned();
                let _ = tx
                    .lock()
                    .unwrap()
                    .send((name, sigblk(me) & USR1 != 0, line.to_owned()));
            },
        )))
        .build()
        .unwrap();
    let h = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), || {
            block_sigusr1();
            for _ in 0..2000 {
                corun::yield_now();
            }
        })
        .unwrap();
    h.join().unwrap();
    let (name, blocked, line) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    eprintln!("warning on thread {name:?}, SIGUSR1 blocked there: {blocked}\n  {line}");
    drop(rt);
    let _ = std::fs::remove_file(&path);
    assert!(
        !blocked,
        "a thread corun made from a dedicated thread inherited its signal mask"
    );
}

/// With the `tokio` feature, the bridge's tokio runtime started from a dedicated
/// coroutine is built on a thread the template made: its threads do not inherit
/// the dedicated thread's signal mask.
#[cfg(feature = "tokio")]
#[test]
fn the_tokio_reactor_does_not_inherit_a_dedicated_threads_signal_mask() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .name("rv")
        .build()
        .unwrap();
    let h = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), || {
            block_sigusr1();
            corun::await_future(async { 1 })
        })
        .unwrap();
    h.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").unwrap() {
        let tid: i64 = e.unwrap().file_name().to_string_lossy().parse().unwrap();
        let comm =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
        if comm.contains("tokio") {
            found.push((comm.trim().to_owned(), sigblk(tid) & USR1 != 0));
        }
    }
    eprintln!("tokio threads (name, SIGUSR1 blocked): {found:?}");
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|(_, b)| !b),
        "tokio's threads inherited the dedicated thread's mask"
    );
}

fn tcp_pair() -> (std::net::TcpStream, corun::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (peer, corun::net::TcpStream::from_std(s).unwrap())
}

/// Waits (up to 5 s) in its destructor for a reader on a worker.
struct WaitsForReader(
    std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    Arc<AtomicI64>,
);

impl Drop for WaitsForReader {
    fn drop(&mut self) {
        let r = self.0.lock().unwrap().recv_timeout(Duration::from_secs(5));
        self.1.store(i64::from(r.is_ok()), Ordering::SeqCst);
    }
}

/// A dedicated coroutine's result dropped as its thread ends (a timer held the
/// last reference) may wait for a reader of a socket it handed on: the socket has
/// moved to a polled poller by then.
#[test]
fn sockets_move_on_before_a_dedicated_threads_last_destructors() {
    use std::io::{Read, Write};
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let (mut peer, s) = tcp_pair();
    let (hand_tx, hand_rx) = chan::bounded::<corun::net::TcpStream>(1);
    let (kick_tx, kick_rx) = chan::bounded::<()>(1);
    let (sig_tx, sig_rx) = std::sync::mpsc::channel::<()>();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel::<()>();
    let reader_seen = Arc::new(AtomicI64::new(-1));
    let seen = reader_seen.clone();
    let reader = rt.spawn(move || {
        let s = hand_rx.recv().unwrap();
        let mut b = [0u8; 1];
        let _ = (&s).read(&mut b);
        let _ = sig_tx.send(());
    });
    let d = corun::Builder::new()
        .dedicated_thread()
        .spawn_on(rt.handle(), move || {
            // One wait binds the socket to this thread's poller.
            bound_tx.send(()).unwrap();
            let mut b = [0u8; 1];
            (&s).read_exact(&mut b).unwrap();
            // A wait with a deadline, ended early: its timer keeps a reference.
            let _ = kick_rx.recv_timeout(Duration::from_secs(20));
            hand_tx.send(s).unwrap();
            WaitsForReader(std::sync::Mutex::new(sig_rx), seen)
        })
        .unwrap();
    bound_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    peer.write_all(b"a").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(d); // detached: the timer holds the last reference to the result
    kick_tx.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    peer.write_all(b"b").unwrap();
    let ok = support_wait(|| reader_seen.load(Ordering::SeqCst) >= 0);
    assert!(ok, "the result was never dropped");
    assert_eq!(
        reader_seen.load(Ordering::SeqCst),
        1,
        "the destructor waited 5 s for a reader that never woke"
    );
    reader.join().unwrap();
}

/// A coroutine that starts a socket read after its runtime began shutting down is
/// cancelled there (it used to rebind the socket for ever, at full CPU).
#[test]
fn a_read_after_shutdown_began_is_cancelled() {
    use std::io::Read;
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let (_peer, s) = tcp_pair();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let _h = rt.spawn(move || {
        go_tx.send(()).unwrap();
        // Holds the worker until the drop below has begun.
        std::thread::sleep(Duration::from_millis(300));
        let mut b = [0u8; 1];
        let _ = (&s).read(&mut b);
    });
    go_rx.recv().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "Runtime::drop did not return"
    );
}

fn support_wait(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
