//! `corun::net` TCP: many connections, timeouts, resets, half close, running out of
//! file descriptors, `blocking` beside sockets, plain threads, buffered IO.
//! Loopback only; every loop is bounded; time bounds are generous.
//!
//! The tests that lower `RLIMIT_NOFILE` do it in a child process, running an
//! `#[ignore]`d helper test (`support::run_child`).

use corun::net::{SocketAddr, TcpListener, TcpStream};
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{assert_child_done, child_done, is_child, run_child, ChildTest, CHILD_DONE};

mod support;

/// A loopback listener with the given backlog (std's `bind` fixes its own).
fn listener(backlog: i32) -> (TcpListener, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(backlog).unwrap();
    let l = TcpListener::from_std(s.into()).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A connected pair on loopback: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let (l, addr) = listener(16);
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

// ---- 10,000 concurrent connections ----

/// Raises the soft `RLIMIT_NOFILE` to at least `want` (and the hard limit too, as
/// root); the reason if it cannot.
fn raise_fd_limit(want: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!(
            "getrlimit failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads one rlimit from the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(format!(
            "RLIMIT_NOFILE is {}/{} (soft/hard) and raising it to {want} failed: {} \
             (raise the hard limit, e.g. `ulimit -Hn {want}` as root)",
            lim.rlim_cur,
            lim.rlim_max,
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// 10,000 connections open at once: the server ends here, the clients in a child
/// process (each process then needs a little over 10,000 descriptors, within the
/// usual hard limits even where the hard limit cannot be raised).
#[test]
fn ten_thousand_concurrent_connections() {
    const SERVERS: usize = 100;
    if let Err(why) = raise_fd_limit(MANY as u64 + 512) {
        eprintln!("SKIPPED ten_thousand_concurrent_connections: {why}");
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (l, addr) = listener(4096);
    let (conn_tx, conn_rx) = corun::chan::unbounded::<TcpStream>();
    // Closed when every connection has made its round trip: all are open then.
    let (release_tx, release_rx) = corun::chan::bounded::<()>(0);
    let served = Arc::new(AtomicUsize::new(0));
    let acceptor = rt.spawn(move || {
        for _ in 0..MANY {
            conn_tx.send(l.accept().unwrap().0).unwrap();
        }
    });
    // Clients write first, so a few server coroutines can serve the connections in
    // turn; each keeps its connections open until the release.
    let servers: Vec<_> = (0..SERVERS)
        .map(|_| {
            let (conn_rx, release_rx, served) =
                (conn_rx.clone(), release_rx.clone(), served.clone());
            rt.spawn(move || {
                let mut kept = Vec::new();
                while let Ok(mut s) = conn_rx.recv() {
                    let mut buf = [0u8; 8];
                    s.read_exact(&mut buf).unwrap();
                    s.write_all(&buf).unwrap();
                    kept.push(s);
                    served.fetch_add(1, Ordering::SeqCst);
                }
                let _ = release_rx.recv();
                for s in &kept {
                    // Reset instead of a FIN: no TIME_WAIT left behind for the next run.
                    socket2::SockRef::from(s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                }
                kept.len()
            })
        })
        .collect();
    drop((conn_rx, release_rx));
    let mut child = ChildTest::new("child_ten_thousand_clients")
        .env("CORUN_NET_ADDR", addr.to_string())
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while served.load(Ordering::SeqCst) < MANY {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "only {} of {MANY} connections served; client process: {:?}\n{}\n{}",
                served.load(Ordering::SeqCst),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(release_tx); // every connection was open at this point
    acceptor.join().unwrap();
    let kept: usize = servers.into_iter().map(|s| s.join().unwrap()).sum();
    assert_eq!(kept, MANY);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(CHILD_DONE),
        "client process failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const MANY: usize = 10_000;

#[test]
#[ignore = "run as a child by ten_thousand_concurrent_connections"]
fn child_ten_thousand_clients() {
    if !is_child("child_ten_thousand_clients") {
        return;
    }
    raise_fd_limit(MANY as u64 + 512).unwrap();
    let addr: SocketAddr = std::env::var("CORUN_NET_ADDR").unwrap().parse().unwrap();
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    // At most 1,000 handshakes at a time, so the accept queue does not overflow
    // (a dropped SYN costs a 1 s retransmit); connections stay open regardless.
    let connecting = Arc::new(corun::sync::Semaphore::new(1000));
    let clients: Vec<_> = (0..MANY as u64)
        .map(|i| {
            let connecting = connecting.clone();
            rt.spawn(move || {
                let permit = connecting.acquire();
                let mut s = TcpStream::connect(addr).unwrap();
                drop(permit);
                s.write_all(&i.to_le_bytes()).unwrap();
                let mut buf = [0u8; 8];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(u64::from_le_bytes(buf), i);
                // Held open until the server lets go (a reset, or end of stream).
                match s.read(&mut buf) {
                    Ok(0) => {}
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                    r => panic!("expected the server to close, got {r:?}"),
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    child_done();
}

// ---- timeouts ----

#[test]
fn read_timeout_expires_with_would_block() {
    let check = || {
        let (c, _s) = pair();
        c.set_read_timeout(Some(Duration::from_millis(60))).unwrap();
        let t = Instant::now();
        let e = (&c).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(55), "{took:?}");
        assert!(took < Duration::from_secs(20), "{took:?}");
        // The connection still works after a timeout.
        (&_s).write_all(b"late").unwrap();
        let mut buf = [0u8; 4];
        (&c).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    };
    corun::go!(check).join().unwrap(); // a coroutine
    check(); // a plain thread
}

#[test]
fn write_timeout_expires_when_the_peer_does_not_read() {
    let check = || {
        let (c, s) = pair();
        socket2::SockRef::from(&c)
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&s)
            .set_recv_buffer_size(4096)
            .unwrap();
        c.set_write_timeout(Some(Duration::from_millis(60)))
            .unwrap();
        let chunk = [7u8; 16 * 1024];
        let mut written = 0usize;
        let e = loop {
            match (&c).write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "the send buffer never filled");
        };
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(written > 0);
    };
    corun::go!(check).join().unwrap();
    check();
}

#[test]
fn accept_waits_can_be_abandoned_and_the_listener_still_serves() {
    // std has no accept timeout: a non-blocking accept, or a coroutine cancelled
    // while it waits (Go's SetDeadline), stand for it.
    let (l, addr) = listener(16);
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    l.set_nonblocking(false).unwrap();
    let l = Arc::new(l);
    let l2 = l.clone();
    let waiting = corun::go!(move || l2.accept().map(|_| ()));
    corun::sleep(Duration::from_millis(30));
    waiting.cancel();
    let err = waiting.join().unwrap_err();
    assert!(err.downcast_ref::<corun::Cancelled>().is_some());
    let l3 = l.clone();
    let server = corun::go!(move || l3.accept().unwrap().1);
    let c = TcpStream::connect(addr).unwrap();
    assert_eq!(server.join().unwrap(), c.local_addr().unwrap());
}

#[test]
fn connect_timeout_to_a_listener_whose_accept_queue_is_full() {
    // Linux drops a SYN while the listener's accept queue is full (whatever the
    // SYN-cookie setting), so with a backlog of 0 and one connection left unaccepted
    // the next handshake cannot finish: the client's SYN is retransmitted after 1 s,
    // later than the timeout. Sequential connects make this deterministic.
    let check = || {
        let (l, addr) = listener(0);
        let mut kept = Vec::new();
        for _ in 0..8 {
            let t = Instant::now();
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => kept.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    assert!(
                        t.elapsed() >= Duration::from_millis(290),
                        "{:?}",
                        t.elapsed()
                    );
                    assert!(!kept.is_empty());
                    drop(l);
                    return;
                }
            }
        }
        panic!("8 connections got through a listener with a backlog of 0");
    };
    corun::go!(check).join().unwrap();
    check();
    assert_eq!(
        TcpStream::connect_timeout(&"127.0.0.1:1".parse().unwrap(), Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

// ---- resets, EOF, half close ----

#[test]
fn peer_reset_and_eof() {
    corun::go!(|| {
        // A reset (SO_LINGER 0) while the reader is parked.
        let (c, s) = pair();
        let reader = corun::go!(move || (&c).read(&mut [0u8; 8]).map_err(|e| e.kind()));
        corun::sleep(Duration::from_millis(20));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        assert_eq!(reader.join().unwrap(), Err(ErrorKind::ConnectionReset));

        // An orderly close: the reader sees the data, then end of stream.
        let (c, s) = pair();
        let reader = corun::go!(move || {
            let mut all = Vec::new();
            (&c).read_to_end(&mut all).unwrap();
            all
        });
        (&s).write_all(b"bye").unwrap();
        drop(s);
        assert_eq!(reader.join().unwrap(), b"bye");

        // Writing to a reset connection fails (EPIPE or ECONNRESET), no SIGPIPE.
        let (c, s) = pair();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        let mut failed = false;
        for _ in 0..100 {
            if (&c).write(b"x").is_err() {
                failed = true;
                break;
            }
            corun::sleep(Duration::from_millis(5));
        }
        assert!(failed, "writes to a reset connection kept succeeding");
    })
    .join()
    .unwrap();
}

#[test]
fn half_close_then_the_peer_still_writes_back() {
    let (l, addr) = listener(16);
    let server = corun::go!(move || {
        let (s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        (&s).read_to_end(&mut req).unwrap(); // EOF: the client shut down writing
        (&s).write_all(&req.iter().rev().copied().collect::<Vec<_>>())
            .unwrap();
    });
    let client = corun::go!(move || {
        let c = TcpStream::connect(addr).unwrap();
        (&c).write_all(b"stressed").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut resp = String::new();
        (&c).read_to_string(&mut resp).unwrap();
        resp
    });
    assert_eq!(client.join().unwrap(), "desserts");
    server.join().unwrap();
}

// ---- out of file descriptors ----

#[test]
fn accept_out_of_file_descriptors_errors_then_serves_again() {
    let out = run_child("child_accept_out_of_fds");
    assert_child_done(&out);
}

#[test]
#[ignore = "run as a child by accept_out_of_file_descriptors_errors_then_serves_again"]
fn child_accept_out_of_fds() {
    if !is_child("child_accept_out_of_fds") {
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (l, addr) = listener(16);
    // Connections queued before descriptors run out (the clients need some too).
    let c1 = std::net::TcpStream::connect(addr).unwrap();
    let c2 = std::net::TcpStream::connect(addr).unwrap();
    // Lower the soft limit a little above what is open, then use up the rest.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let lim = libc::rlimit {
        rlim_cur: open + 16,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write the one struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur), 0);
        let lim = libc::rlimit {
            rlim_max: cur.rlim_max,
            ..lim
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(fillers.len() < 100_000);
    }
    let server = rt.spawn(move || {
        let mut fillers = Some(fillers);
        let mut errors = 0;
        // Each failure is EMFILE; the waits in between are the 20 ms retry timer,
        // since epoll sends no new edge for connections already queued.
        let first = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                    errors += 1;
                    if errors == 3 {
                        fillers = None; // descriptors free up
                    }
                    assert!(
                        errors < 500,
                        "accept kept failing after descriptors were freed"
                    );
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(fillers.is_none());
        assert!(errors >= 3);
        let second = l.accept().unwrap().0;
        // And a connection made now is served as usual.
        let late = corun::go!(move || TcpStream::connect(addr).unwrap());
        let third = l.accept().unwrap().0;
        late.join().unwrap();
        (first, second, third, errors)
    });
    let (first, second, _third, errors) = server.join().unwrap();
    assert_eq!(first.peer_addr().unwrap(), c1.local_addr().unwrap());
    assert_eq!(second.peer_addr().unwrap(), c2.local_addr().unwrap());
    println!("accept failed {errors} times with EMFILE, then served");
    child_done();
}

// ---- blocking calls beside sockets ----

#[test]
fn blocking_calls_do_not_stop_other_coroutines() {
    const BLOCKERS: usize = 64;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let blockers: Vec<_> = (0..BLOCKERS)
        .map(|_| {
            let (release, started) = (release.clone(), started.clone());
            rt.spawn(move || {
                corun::blocking(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    support::wait_until(Duration::from_secs(60), || release.load(Ordering::SeqCst))
                })
            })
        })
        .collect();
    // While every blocking call holds its pool thread, TCP ping-pong between two
    // coroutines on the same two workers makes progress.
    let s2 = started.clone();
    let pingpong = rt.spawn(move || {
        let t = Instant::now();
        while s2.load(Ordering::SeqCst) < BLOCKERS {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "blocking calls never started"
            );
            corun::sleep(Duration::from_millis(1));
        }
        let (l, addr) = listener(16);
        let echo = corun::go!(move || {
            let (s, _) = l.accept().unwrap();
            let mut b = [0u8; 1];
            while (&s).read(&mut b).unwrap() == 1 {
                (&s).write_all(&b).unwrap();
            }
        });
        let c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        for i in 0..500u32 {
            (&c).write_all(&[i as u8]).unwrap();
            let mut b = [0u8; 1];
            (&c).read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
        }
        drop(c);
        echo.join().unwrap();
    });
    pingpong.join().unwrap();
    release.store(true, Ordering::SeqCst);
    for b in blockers {
        assert!(
            b.join().unwrap(),
            "a blocking call ran out its 60 s: the ping-pong was stuck"
        );
    }
}

// ---- plain threads, buffered IO, address lists ----

#[test]
fn the_same_types_work_from_plain_threads() {
    let (l, addr) = listener(16);
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (s, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            (&s).write_all(line.to_uppercase().as_bytes()).unwrap();
        }
    });
    // A plain thread, a coroutine, and another plain thread as clients.
    let ask = move |msg: &str| {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        (&s).write_all(format!("{msg}\n").as_bytes()).unwrap();
        let mut back = String::new();
        (&s).read_to_string(&mut back).unwrap();
        back
    };
    assert_eq!(ask("thread"), "THREAD\n");
    assert_eq!(
        corun::go!(move || ask("coroutine")).join().unwrap(),
        "COROUTINE\n"
    );
    assert_eq!(
        std::thread::spawn(move || ask("again")).join().unwrap(),
        "AGAIN\n"
    );
    server.join().unwrap();
}

#[test]
fn bufreader_and_bufwriter_over_a_stream() {
    const LINES: usize = 2000;
    let (l, addr) = listener(16);
    let server = corun::go!(move || {
        let (s, _) = l.accept().unwrap();
        let mut out = BufWriter::new(&s);
        for line in BufReader::new(&s).lines() {
            let line = line.unwrap();
            writeln!(out, "{}", line.len()).unwrap();
        }
        out.flush().unwrap();
    });
    let client = corun::go!(move || {
        let s = TcpStream::connect(addr).unwrap();
        let writer = {
            let s = s.try_clone().unwrap();
            corun::go!(move || {
                let mut w = BufWriter::with_capacity(1024, &s);
                for i in 0..LINES {
                    writeln!(w, "{}", "x".repeat(i % 97)).unwrap();
                }
                w.flush().unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            })
        };
        let lens: Vec<usize> = BufReader::new(&s)
            .lines()
            .map(|l| l.unwrap().parse().unwrap())
            .collect();
        writer.join().unwrap();
        lens
    });
    let lens = client.join().unwrap();
    assert_eq!(lens, (0..LINES).map(|i| i % 97).collect::<Vec<_>>());
    server.join().unwrap();
}

#[test]
fn connect_tries_every_address_in_turn() {
    let closed = {
        let (l, a) = listener(1);
        drop(l);
        a
    };
    let (l, good) = listener(16);
    let server = corun::go!(move || l.accept().unwrap().1);
    let addrs = [closed, good];
    let c = corun::go!(move || TcpStream::connect(&addrs[..]).unwrap())
        .join()
        .unwrap();
    assert_eq!(c.peer_addr().unwrap(), good);
    assert_eq!(server.join().unwrap(), c.local_addr().unwrap());
    let e = TcpStream::connect(closed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

// ---- a socket outlives the runtime it was first polled by ----

#[test]
fn a_socket_moves_to_a_live_runtime_when_its_first_one_is_dropped() {
    let (c, s) = pair();
    let (c, s) = (Arc::new(c), Arc::new(s));
    // First wait on runtime A registers `s` with one of A's pollers.
    let a = corun::Runtime::builder().workers(1).build().unwrap();
    let (s1, c1) = (s.clone(), c.clone());
    let h = corun::Builder::new()
        .spawn_on(a.handle(), move || {
            let mut buf = [0u8; 1];
            let feeder = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&*c1).write_all(b"a").unwrap();
            });
            (&*s1).read_exact(&mut buf).unwrap();
            feeder.join().unwrap();
            buf[0]
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), b'a');
    drop(a); // nobody polls A's pollers any more
             // A coroutine on runtime B waits on the same socket: it must be woken by B.
    let b = corun::Runtime::builder().workers(1).build().unwrap();
    let s2 = s.clone();
    let h = corun::Builder::new()
        .spawn_on(b.handle(), move || {
            s2.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let t0 = Instant::now();
            let mut buf = [0u8; 1];
            (&*s2).read_exact(&mut buf).map(|_| (buf[0], t0.elapsed()))
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    (&*c).write_all(b"b").unwrap();
    let (got, waited) = h.join().unwrap().expect("the read is woken, not timed out");
    assert_eq!(got, b'b');
    // Woken by B's poller when the byte came, long before the 20 s timeout.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
}

// ---- connect out of file descriptors ----

#[test]
fn connect_out_of_file_descriptors_is_a_clear_error() {
    let out = run_child("child_connect_out_of_fds");
    assert_child_done(&out);
}

#[test]
#[ignore = "run as a child by connect_out_of_file_descriptors_is_a_clear_error"]
fn child_connect_out_of_fds() {
    if !is_child("child_connect_out_of_fds") {
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (l, addr) = listener(64);
    // The workers are up (their pollers exist) before descriptors run out.
    assert_eq!(rt.block_on(|| 1), 1);
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write the one struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur), 0);
        let lim = libc::rlimit {
            rlim_cur: open + 16,
            rlim_max: cur.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(fillers.len() < 100_000);
    }
    let check = |e: std::io::Error, from: &str| {
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{from}: {e}");
        assert!(e.to_string().contains("Too many open files"), "{from}: {e}");
    };
    // From a coroutine, with and without a timeout, and from a plain thread: an
    // error at once, not a hang.
    let r = rt.block_on(move || {
        (
            TcpStream::connect(addr).err(),
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).err(),
        )
    });
    check(
        r.0.expect("connect succeeded with no descriptor left"),
        "coroutine",
    );
    check(
        r.1.expect("connect_timeout succeeded"),
        "coroutine, timeout",
    );
    let e = std::thread::spawn(move || TcpStream::connect(addr).err())
        .join()
        .unwrap();
    check(e.expect("connect succeeded on a thread"), "thread");
    // One descriptor free: the socket gets it and the connection completes (into the
    // listener's queue; accepting it would need another).
    fillers.pop();
    let c = rt
        .block_on(move || TcpStream::connect(addr))
        .expect("connect with one fd free");
    drop(c);
    // All free again: connect, accept, talk.
    drop(fillers);
    let s = rt.block_on(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"fd").unwrap();
        c
    });
    let mut n = 0;
    loop {
        let (mut a, _) = l.accept().unwrap();
        let mut buf = [0u8; 2];
        // The first queued connection was closed without a byte.
        if a.read(&mut buf).unwrap() == 2 {
            assert_eq!(&buf, b"fd");
            break;
        }
        n += 1;
        assert!(n < 3);
    }
    drop(s);
    child_done();
}

// ---- the listen backlog ----

/// How many of `n` plain connects to `addr` complete within 300 ms each while
/// nobody accepts (a full backlog drops the SYN, and the client retries in 1 s).
fn connects_without_accept(addr: SocketAddr, n: usize) -> usize {
    let mut held = Vec::new();
    for _ in 0..n {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    held.len()
}

#[test]
fn bind_takes_the_system_backlog_and_bind_with_backlog_a_given_one() {
    let max: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if max < 600 {
        eprintln!("skipped: net.core.somaxconn is {max}, too small to tell from std's 128");
        return;
    }
    // std's bind listens with 128: a burst of 500 would stall at ~129.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(connects_without_accept(l.local_addr().unwrap(), 500), 500);
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 8).unwrap();
    let got = connects_without_accept(l.local_addr().unwrap(), 50);
    assert!(
        (8..=10).contains(&got),
        "{got} connects completed with a backlog of 8"
    );
}

#[test]
fn a_runtime_raises_the_soft_descriptor_limit_to_the_hard_one() {
    let out = run_child("child_raises_fd_limit");
    assert_child_done(&out);
}

#[test]
#[ignore = "run as a child by a_runtime_raises_the_soft_descriptor_limit_to_the_hard_one"]
fn child_raises_fd_limit() {
    if !is_child("child_raises_fd_limit") {
        return;
    }
    let get = || {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the one struct passed.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
        cur
    };
    let hard = get().rlim_max;
    let low = libc::rlimit {
        rlim_cur: hard.min(256),
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the one struct passed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let _rt = corun::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(get().rlim_cur, hard);
    child_done();
}

// ---- placement of connection coroutines ----

#[test]
fn an_acceptor_on_one_worker_spreads_its_connections_evenly() {
    const N: usize = 200;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let (r, s) = (release.clone(), served.clone());
    let acceptor = rt.spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..N {
            let (mut c, _) = l.accept().unwrap();
            let (r, s) = (r.clone(), s.clone());
            conns.push(corun::spawn(move || {
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                c.write_all(&b).unwrap();
                s.fetch_add(1, Ordering::SeqCst);
                // Alive until every connection has started: the split is then fixed.
                while !r.load(Ordering::SeqCst) {
                    corun::sleep(Duration::from_millis(5));
                }
            }));
        }
        conns
    });
    let clients: Vec<_> = (0..N)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"x").unwrap();
            c
        })
        .collect();
    for mut c in clients {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
    }
    support::wait_for("every connection served", Duration::from_secs(30), || {
        served.load(Ordering::SeqCst) == N
    });
    let alive: Vec<usize> = rt
        .metrics()
        .workers
        .iter()
        .map(|w| w.started_alive)
        .collect();
    release.store(true, Ordering::SeqCst);
    for h in acceptor.join().unwrap() {
        h.join().unwrap();
    }
    // The acceptor itself is alive on one of them; within 10% of an even split.
    let even = N as f64 / 2.0;
    for &a in &alive {
        assert!(
            (a as f64 - even).abs() <= even * 0.1 + 1.0,
            "connections per worker {alive:?}: not within 10% of {even}"
        );
    }
}
