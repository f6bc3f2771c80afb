//! Dropping a runtime: parked and sleeping coroutines are unwound (their destructors
//! run, their `join` gives `Cancelled`), unstarted ones are dropped, scoped children
//! unwind before their scope's owner, and a dead runtime refuses new work. Coroutines
//! parked on channels, `corun::sync` primitives and sockets unwind as well, and a
//! spawn that races the drop either fails with "shutting down" or its coroutine ends.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts its drops.
struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn is_cancelled(r: &std::thread::Result<()>) -> bool {
    matches!(r, Err(e) if e.downcast_ref::<corun::Cancelled>().is_some())
}

#[test]
fn dropping_the_runtime_unwinds_parked_and_sleeping_coroutines() {
    const PARKED: usize = 300;
    const SLEEPING: usize = 50;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..PARKED + SLEEPING {
        let guard = Guard(drops.clone());
        let started = started.clone();
        handles.push(rt.spawn(move || {
            let _guard = guard;
            started.fetch_add(1, Ordering::SeqCst);
            if i < PARKED {
                loop {
                    corun::park();
                }
            } else {
                corun::sleep(Duration::from_secs(3600));
            }
        }));
    }
    while started.load(Ordering::SeqCst) < PARKED + SLEEPING {
        std::thread::yield_now();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(rt.metrics().live, PARKED + SLEEPING);
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), PARKED + SLEEPING);
    for (i, h) in handles.into_iter().enumerate() {
        assert!(h.is_finished(), "coroutine {i} not finished after drop");
        let r = h.join();
        assert!(is_cancelled(&r), "coroutine {i}: join gave {:?}", r.is_ok());
    }
}

struct Unstarted {
    spawned: usize,
    guards_dropped: usize,
    bodies_run: usize,
    results: Vec<std::thread::Result<()>>,
}

/// Spawns `N` parking coroutines onto a 1-worker runtime whose worker is held by a
/// blocker until the runtime starts shutting down (seen as a refused spawn), then
/// drops the runtime.
fn drop_runtime_with_unstarted_coroutines() -> Unstarted {
    const N: usize = 1000;
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let blocker = rt.spawn(move || {
        tx.send(()).unwrap();
        while corun::Builder::new().spawn_on(&handle, || ()).is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    rx.recv().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let guard = Guard(drops.clone());
            let ran = ran.clone();
            rt.spawn(move || {
                let _guard = guard;
                ran.fetch_add(1, Ordering::SeqCst);
                loop {
                    corun::park();
                }
            })
        })
        .collect();
    // The worker is held: only the blocker has started.
    assert_eq!(rt.metrics().workers[0].started, 1);
    drop(rt);
    assert!(blocker.join().is_ok());
    Unstarted {
        spawned: N,
        guards_dropped: drops.load(Ordering::SeqCst),
        bodies_run: ran.load(Ordering::SeqCst),
        results: handles.into_iter().map(|h| h.join()).collect(),
    }
}

#[test]
fn dropping_the_runtime_drops_unstarted_coroutines() {
    let u = drop_runtime_with_unstarted_coroutines();
    assert_eq!(u.guards_dropped, u.spawned, "captured guards not dropped");
    for (i, r) in u.results.iter().enumerate() {
        assert!(is_cancelled(r), "queued coroutine {i}: join gave Ok");
    }
}

#[test]
fn no_queued_coroutine_starts_once_the_runtime_is_dropped() {
    // `Runtime`'s docs: dropping it "drops those never started".
    let u = drop_runtime_with_unstarted_coroutines();
    assert_eq!(
        u.bodies_run, 0,
        "of {} coroutines queued when drop(Runtime) began, {} were started and ran",
        u.spawned, u.bodies_run
    );
}

#[test]
fn finished_results_survive_the_runtime() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..100u64).map(|i| rt.spawn(move || i * 3)).collect();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::yield_now();
    }
    drop(rt);
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 3 * 99 * 100 / 2);
}

/// Pushes its label to a shared log when dropped.
struct Rec(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl Drop for Rec {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

/// A coroutine owning a scope whose children park forever; the runtime is dropped
/// and the order in which owner and children unwind is checked. With
/// `owner_from_new_thread`, the worker spawns something first and the owner is then
/// spawned from a thread that never spawned before.
fn scoped_children_unwind_before_owner(workers: usize, owner_from_new_thread: bool) {
    const CHILDREN: usize = 40;
    let rt = corun::Runtime::builder().workers(workers).build().unwrap();
    if owner_from_new_thread {
        rt.block_on(|| corun::spawn(|| ()).join().unwrap());
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let (log2, started2) = (log.clone(), started.clone());
    // With several workers, children that start on the owner's thread hold it (up to a
    // deadline) until one has started elsewhere, so that the children are spread.
    let spread = workers > 1;
    let give_up = Instant::now() + Duration::from_secs(10);
    let elsewhere = Arc::new(AtomicBool::new(false));
    let body = move || {
        let _owner = Rec("owner", log2.clone());
        let owner_thread = std::thread::current().id();
        let borrowed = vec![1u64; 16];
        corun::scope(|s| {
            for _ in 0..CHILDREN {
                let (log, started, borrowed) = (log2.clone(), started2.clone(), &borrowed);
                let elsewhere = elsewhere.clone();
                s.spawn(move || {
                    let _child = Rec("child", log);
                    if std::thread::current().id() != owner_thread {
                        elsewhere.store(true, Ordering::SeqCst);
                    }
                    while spread && !elsewhere.load(Ordering::SeqCst) && Instant::now() < give_up {
                        std::thread::yield_now();
                    }
                    started.fetch_add(1, Ordering::SeqCst);
                    loop {
                        corun::park();
                        // Touches the owner's stack whenever it wakes.
                        assert_eq!(borrowed.iter().sum::<u64>(), 16);
                    }
                });
            }
        });
    };
    let owner = if owner_from_new_thread {
        let handle = rt.handle().clone();
        std::thread::spawn(move || handle.spawn(body))
            .join()
            .unwrap()
    } else {
        rt.spawn(body)
    };
    while started.load(Ordering::SeqCst) < CHILDREN {
        std::thread::yield_now();
    }
    drop(rt);
    let r = owner.join();
    assert!(r.is_err(), "the owner was not unwound");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), CHILDREN + 1, "{log:?}");
    assert_eq!(
        log.last(),
        Some(&"owner"),
        "the owner unwound before its scoped children: {log:?}"
    );
}

#[test]
fn scoped_children_unwind_before_their_owner_on_one_worker() {
    scoped_children_unwind_before_owner(1, false);
}

#[test]
fn scoped_children_unwind_before_their_owner_spawned_from_a_new_thread() {
    scoped_children_unwind_before_owner(1, true);
}

#[test]
fn scoped_children_unwind_before_their_owner_on_two_workers() {
    for _ in 0..20 {
        scoped_children_unwind_before_owner(2, false);
    }
}

#[test]
fn a_dropped_runtime_refuses_spawns_without_hanging() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    assert_eq!(rt.block_on(|| 1), 1);
    drop(rt);
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let err = corun::Builder::new()
        .spawn_on(&handle, move || ran2.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert!(
        err.to_string().contains("shutting down"),
        "unexpected error: {err}"
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.spawn(|| ())));
    assert!(r.is_err(), "Handle::spawn on a dropped runtime must panic");
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn dropping_a_runtime_from_its_own_coroutine_does_not_deadlock() {
    let rt = corun::Runtime::builder().workers(1).build().unwrap();
    let rt = Arc::new(Mutex::new(Some(rt)));
    let inner = rt.clone();
    let h = rt.lock().unwrap().as_ref().unwrap().spawn(move || {
        // Leaked with a message rather than joining its own thread.
        drop(inner.lock().unwrap().take());
        "returned"
    });
    assert_eq!(h.join().unwrap(), "returned");
}

/// Drops `rt` on another thread and fails (instead of hanging the suite) if that
/// takes longer than a minute.
fn drop_within_a_minute(rt: corun::Runtime) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("drop(Runtime) did not return within 60 s");
}

/// A value whose drop is counted (a channel's element).
struct Tok(Arc<AtomicUsize>);

impl Drop for Tok {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_runtime_unwinds_coroutines_parked_on_channels_locks_and_sockets() {
    use corun::chan;
    use corun::net::{TcpListener, TcpStream, UdpSocket};
    use corun::sync::{Barrier, Condvar, Mutex as CoMutex, RwLock, Semaphore, WaitGroup};
    use std::io::{Read, Write};

    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let toks = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles: Vec<(&str, corun::JoinHandle<()>)> = Vec::new();
    let mut spawn = |what: &'static str, f: Box<dyn FnOnce() + Send>| {
        let (guard, started) = (Guard(drops.clone()), started.clone());
        handles.push((
            what,
            rt.spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                f();
                // Any wait that returns falls through to here and is reported below.
                loop {
                    corun::park();
                }
            }),
        ));
    };

    // Channels: receivers on empty channels of each kind, senders on full ones.
    let (btx, brx) = chan::bounded::<Tok>(4);
    let (utx, urx) = chan::unbounded::<Tok>();
    let (rtx, rrx) = chan::bounded::<Tok>(0);
    let (ftx, frx) = chan::bounded::<Tok>(1);
    ftx.send(Tok(toks.clone())).unwrap();
    let (r1, r2) = (brx.clone(), urx.clone());
    spawn("recv bounded", Box::new(move || drop(r1.recv())));
    spawn("recv unbounded", Box::new(move || drop(r2.recv())));
    let r3 = rrx.clone();
    spawn("recv rendezvous", Box::new(move || drop(r3.recv())));
    let (stx, srx) = chan::bounded::<Tok>(0); // nobody receives
    let (t1, tok) = (stx.clone(), Tok(toks.clone()));
    spawn("send rendezvous", Box::new(move || drop(t1.send(tok))));
    let (t2, tok) = (ftx.clone(), Tok(toks.clone()));
    spawn("send full", Box::new(move || drop(t2.send(tok))));
    let (s1, s2) = (brx.clone(), urx.clone());
    spawn(
        "select",
        Box::new(move || {
            corun::select! {
                recv(s1) -> _ => (),
                recv(s2) -> _ => (),
            }
        }),
    );

    // corun::sync: the locks are held by this thread. (A writer waiting for readers
    // to leave is not here: its cancellation waits for them, see
    // tests/sync_cancel.rs, so with the read lock held by this thread the drop would
    // wait for this thread.)
    let m = Arc::new(CoMutex::new(0u32));
    let rw = Arc::new(RwLock::new(0u32));
    let held = m.lock();
    let write = rw.write();
    let m1 = m.clone();
    spawn("mutex", Box::new(move || *m1.lock() += 1));
    let rw1 = rw.clone();
    spawn("rwlock write", Box::new(move || *rw1.write() += 1));
    let sem = Arc::new(Semaphore::new(0));
    let sem1 = sem.clone();
    spawn("semaphore", Box::new(move || drop(sem1.acquire())));
    let cv = Arc::new((CoMutex::new(()), Condvar::new()));
    let cv1 = cv.clone();
    spawn(
        "condvar",
        Box::new(move || {
            let mut g = cv1.0.lock();
            cv1.1.wait(&mut g);
        }),
    );
    let wg = WaitGroup::new();
    wg.add(1);
    let wg1 = wg.clone();
    spawn("waitgroup", Box::new(move || wg1.wait()));
    let barrier = Arc::new(Barrier::new(2));
    let b1 = barrier.clone();
    spawn(
        "barrier",
        Box::new(move || {
            b1.wait();
        }),
    );

    // Sockets: an accept, a read from a silent peer, a write to a peer that does not
    // read, a UDP receive.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let laddr = listener.local_addr().unwrap();
    spawn("accept", Box::new(move || drop(listener.accept())));
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let saddr = server.local_addr().unwrap();
    let reader = TcpStream::connect(saddr).unwrap();
    let (reader_peer, _) = server.accept().unwrap();
    spawn(
        "tcp read",
        Box::new(move || {
            let mut buf = [0u8; 16];
            let _ = (&reader).read(&mut buf);
        }),
    );
    let writer = TcpStream::connect(saddr).unwrap();
    let (writer_peer, _) = server.accept().unwrap();
    spawn(
        "tcp write",
        Box::new(move || {
            let chunk = vec![7u8; 64 * 1024];
            while (&writer).write(&chunk).is_ok() {}
        }),
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    spawn(
        "udp recv",
        Box::new(move || {
            let mut buf = [0u8; 16];
            let _ = udp.recv_from(&mut buf);
        }),
    );
    // A join of a parked coroutine.
    let parked = rt.spawn(|| loop {
        corun::park();
    });
    spawn("join", Box::new(move || drop(parked.join())));

    let n = handles.len();
    while started.load(Ordering::SeqCst) < n {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(50)); // let them all park
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a wait ended early");
    drop_within_a_minute(rt);

    assert_eq!(drops.load(Ordering::SeqCst), n, "destructors run");
    for (what, h) in handles {
        assert!(h.is_finished(), "{what}: not finished");
        let r = h.join();
        assert!(is_cancelled(&r), "{what}: join gave {:?}", r.is_ok());
    }
    // The values of the two blocked sends were dropped; the buffered one is still
    // in its channel until that is dropped.
    assert_eq!(toks.load(Ordering::SeqCst), 2);
    drop((ftx, frx));
    assert_eq!(toks.load(Ordering::SeqCst), 3);
    // Channels and locks work from a plain thread afterwards.
    btx.send(Tok(toks.clone())).unwrap();
    assert!(brx.recv().is_ok());
    drop(held);
    *m.try_lock().expect("the mutex is free") += 1;
    drop(write);
    *rw.try_write().expect("the rwlock is free") += 1;
    assert_eq!(sem.available_permits(), 0);
    assert!(!cv.1.notify_one(), "a condvar waiter is still queued");
    // The sockets were closed by the unwind: the peers read EOF (or a reset) and
    // the listener's port refuses connections.
    for mut peer in [reader_peer, writer_peer] {
        peer.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {} // what the writer had written
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the unwound coroutine's socket was not closed: {e}"),
            }
        }
    }
    let e = std::net::TcpStream::connect(laddr).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    drop((utx, urx, rtx, rrx, stx, srx, wg, barrier));
}

/// A coroutine unwound by the drop spawns from its destructor: an error naming the
/// shutdown, not a hang and not a coroutine that never runs.
#[test]
fn spawning_from_a_destructor_during_shutdown_is_an_error() {
    struct SpawnsOnDrop(corun::Handle, Arc<Mutex<Vec<String>>>);
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            let mut log = self.1.lock().unwrap();
            for r in [
                corun::Builder::new().spawn(|| ()),
                corun::Builder::new().spawn_on(&self.0, || ()),
            ] {
                log.push(match r {
                    Ok(_) => "spawned".into(),
                    Err(e) => e.to_string(),
                });
            }
        }
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let guard = SpawnsOnDrop(rt.handle().clone(), log.clone());
            let started = started.clone();
            rt.spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                loop {
                    corun::park();
                }
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    drop_within_a_minute(rt);
    for h in hs {
        assert!(is_cancelled(&h.join()));
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 8, "{log:?}");
    for e in log.iter() {
        assert!(
            e.contains("shutting down"),
            "a spawn during shutdown gave: {e}"
        );
    }
}

/// A plain thread spawns in a loop while the runtime is dropped: each spawn either
/// fails with "shutting down" or gives a handle whose join returns (the coroutine
/// ran, or was dropped unstarted: `Cancelled`), never a join that waits forever.
#[test]
fn spawns_racing_the_drop_either_fail_or_end() {
    for round in 0..20 {
        let rt = corun::Runtime::builder().workers(2).build().unwrap();
        let handle = rt.handle().clone();
        let go = Arc::new(AtomicBool::new(false));
        let go2 = go.clone();
        let spawner = std::thread::spawn(move || {
            let mut ok = Vec::new();
            loop {
                match corun::Builder::new().spawn_on(&handle, corun::yield_now) {
                    Ok(h) => ok.push(h),
                    Err(e) => return (ok, e),
                }
                if ok.len() == 50 {
                    go2.store(true, Ordering::SeqCst);
                }
            }
        });
        while !go.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        drop_within_a_minute(rt);
        let (ok, err) = spawner.join().unwrap();
        assert!(
            err.to_string().contains("shutting down"),
            "round {round}: {err}"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut cancelled = 0;
            for h in ok {
                match h.join() {
                    Ok(()) => {}
                    Err(e) => {
                        assert!(e.downcast_ref::<corun::Cancelled>().is_some());
                        cancelled += 1;
                    }
                }
            }
            let _ = tx.send(cancelled);
        });
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: a join after the drop never returned"));
    }
}
