//! `corun::net`: UDP and Unix domain sockets, from coroutines and from plain threads.
//! Loopback and temporary paths only; every loop is bounded.

use corun::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod support;

/// A fresh directory for one test's socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("corun-net-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- UDP ----

#[test]
fn udp_echo_between_coroutines() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let echo = corun::go!(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..200 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = corun::go!(move || {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(addr).unwrap();
        let mut buf = [0u8; 1500];
        for i in 0..200u32 {
            c.send(&i.to_le_bytes()).unwrap();
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &i.to_le_bytes());
        }
    });
    client.join().unwrap();
    echo.join().unwrap();
}

#[test]
fn udp_peek_timeouts_and_nonblocking() {
    corun::go!(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        a.send_to(b"first", ba).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.peek_from(&mut buf).unwrap(), (5, aa));
        b.connect(aa).unwrap();
        assert_eq!(b.peer_addr().unwrap(), aa);
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"first");

        // A read timeout: nothing comes, the coroutine parks until it expires.
        b.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(50)));
        let t = Instant::now();
        assert_eq!(b.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(
            t.elapsed() >= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
        assert!(b.set_read_timeout(Some(Duration::ZERO)).is_err());

        b.set_nonblocking(true).unwrap();
        assert_eq!(b.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        b.set_nonblocking(false).unwrap();

        // The setters reach the socket.
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        a.set_ttl(7).unwrap();
        assert_eq!(a.ttl().unwrap(), 7);
        a.set_multicast_ttl_v4(3).unwrap();
        assert_eq!(a.multicast_ttl_v4().unwrap(), 3);
        a.set_multicast_loop_v4(false).unwrap();
        assert!(!a.multicast_loop_v4().unwrap());
        assert!(a.take_error().unwrap().is_none());

        // A clone shares the socket, not the timeouts.
        let b2 = b.try_clone().unwrap();
        assert_eq!(b2.read_timeout().unwrap(), None);
        a.send_to(b"second", ba).unwrap();
        assert_eq!(b2.recv(&mut buf).unwrap(), 6);
    })
    .join()
    .unwrap();
}

#[test]
fn udp_many_coroutines_wait_on_their_own_sockets() {
    // 100 receivers parked at once on the poller, each woken by its own datagram.
    let socks: Vec<UdpSocket> = (0..100)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<_> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    let hs: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            corun::go!(move || {
                let mut buf = [0u8; 8];
                let n = s.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &(i as u64).to_le_bytes());
            })
        })
        .collect();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, a) in addrs.iter().enumerate().rev() {
        sender.send_to(&(i as u64).to_le_bytes(), a).unwrap();
    }
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn udp_from_plain_threads() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = a.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let (n, from) = a.recv_from(&mut buf).unwrap(); // blocks this thread
        a.send_to(&buf[..n], from).unwrap();
    });
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    b.send_to(b"thread", addr).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(&mut buf).unwrap(), 6);
    t.join().unwrap();
}

// ---- Unix streams ----

#[test]
fn unix_stream_echo_between_coroutines() {
    let dir = TempDir::new("echo");
    let path = dir.path("s");
    let l = UnixListener::bind(&path).unwrap();
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    let server = corun::go!(move || {
        let mut hs = Vec::new();
        for s in l.incoming().take(20) {
            let mut s = s.unwrap();
            hs.push(corun::go!(move || {
                let mut buf = [0u8; 256];
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).unwrap();
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let clients: Vec<_> = (0..20u8)
        .map(|i| {
            let path = path.clone();
            corun::go!(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                for round in 0..50u8 {
                    let msg = [i, round, 0xAB];
                    s.write_all(&msg).unwrap();
                    let mut back = [0u8; 3];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn unix_half_close_peek_and_read_timeout() {
    corun::go!(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = corun::go!(move || {
            let mut got = Vec::new();
            (&b).read_to_end(&mut got).unwrap(); // ends at a's shutdown(Write)
            (&b).write_all(b"after eof").unwrap(); // b can still write
            got
        });
        (&a).write_all(b"request").unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(peer.join().unwrap(), b"request");
        let mut buf = [0u8; 9];
        assert_eq!(a.peek(&mut buf).unwrap(), 9);
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after eof");
        assert_eq!((&a).read(&mut buf).unwrap(), 0);

        let (c, _d) = UnixStream::pair().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = Instant::now();
        assert_eq!(
            (&c).read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(
            t.elapsed() >= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
    })
    .join()
    .unwrap();
}

#[test]
fn unix_write_timeout_when_the_peer_does_not_read() {
    corun::go!(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = [0u8; 64 * 1024];
        let mut written = 0usize;
        let err = loop {
            match (&a).write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "the socket buffer never filled");
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(written > 0);
    })
    .join()
    .unwrap();
}

#[test]
fn unix_connect_waits_while_the_backlog_is_full() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = TempDir::new("backlog");
    let path = dir.path("s");
    // A listener with a backlog of 0: one queued connection fills it, and a
    // non-blocking connect then fails with EAGAIN until `accept` makes room.
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    sock.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    sock.listen(0).unwrap();
    let l = UnixListener::from_std(std::os::unix::net::UnixListener::from(
        std::os::fd::OwnedFd::from(sock),
    ))
    .unwrap();
    let first = UnixStream::connect(&path).unwrap();
    let p = path.clone();
    let (done_tx, done_rx) = corun::chan::bounded(1);
    let second = corun::go!(move || {
        let s = UnixStream::connect(&p).unwrap();
        done_tx.send(()).unwrap();
        s
    });
    // Not connected while the queue is full (it retries on a timer meanwhile).
    assert!(done_rx.recv_timeout(Duration::from_millis(100)).is_err());
    let (_a1, _) = l.accept().unwrap();
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("connect never got through");
    let (mut a2, _) = l.accept().unwrap();
    let mut s2 = second.join().unwrap();
    s2.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    a2.read_exact(&mut b).unwrap();
    drop(first);
}

#[test]
fn unix_abstract_addresses() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("corun-test-abstract-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    let c = corun::go!(move || {
        let mut s = UnixStream::connect_addr(&addr).unwrap();
        s.write_all(b"abs").unwrap();
    });
    let (mut s, _) = l.accept().unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, b"abs");
    c.join().unwrap();
    let unnamed = UnixStream::pair().unwrap().0.local_addr().unwrap();
    let e = UnixStream::connect_addr(&unnamed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn unix_from_plain_threads_and_nonblocking_accept() {
    let dir = TempDir::new("threads");
    let path = dir.path("s");
    let l = UnixListener::bind(&path).unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    l.set_nonblocking(false).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap(); // blocks this thread
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut line).unwrap();
        s.write_all(line.to_uppercase().as_bytes()).unwrap();
    });
    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"hello\n").unwrap();
    let mut back = String::new();
    c.read_to_string(&mut back).unwrap();
    assert_eq!(back, "HELLO\n");
    t.join().unwrap();
}

// ---- Unix datagrams ----

#[test]
fn unix_datagrams_between_bound_sockets() {
    let dir = TempDir::new("dgram");
    let (sp, cp) = (dir.path("server"), dir.path("client"));
    let server = UnixDatagram::bind(&sp).unwrap();
    let echo = corun::go!(move || {
        let mut buf = [0u8; 64];
        for _ in 0..50 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server
                .send_to(&buf[..n], from.as_pathname().unwrap())
                .unwrap();
        }
    });
    let client = UnixDatagram::bind(&cp).unwrap();
    client.connect(&sp).unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        Some(sp.as_path())
    );
    let h = corun::go!(move || {
        let mut buf = [0u8; 64];
        for i in 0..50u32 {
            client.send(&i.to_be_bytes()).unwrap();
            assert_eq!(client.peek(&mut buf).unwrap(), 4);
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &i.to_be_bytes());
        }
    });
    h.join().unwrap();
    echo.join().unwrap();
}

#[test]
fn unix_datagram_senders_wait_for_room_in_a_full_queue() {
    // More datagrams than the receiver's queue holds: senders, connected or not,
    // wait (edge or retry timer) until the slow receiver makes room; none is lost.
    const N: u32 = 2000;
    let dir = TempDir::new("full");
    let rp = dir.path("r");
    let receiver = UnixDatagram::bind(&rp).unwrap();
    let unconnected = UnixDatagram::unbound().unwrap();
    let connected = UnixDatagram::unbound().unwrap();
    connected.connect(&rp).unwrap();
    let s1 = corun::go!(move || {
        for i in 0..N {
            unconnected.send_to(&i.to_le_bytes(), &rp).unwrap();
        }
    });
    let s2 = corun::go!(move || {
        for i in N..2 * N {
            connected.send(&i.to_le_bytes()).unwrap();
        }
    });
    let r = corun::go!(move || {
        corun::sleep(Duration::from_millis(30)); // let the queue fill
        let mut seen = vec![false; 2 * N as usize];
        let mut buf = [0u8; 8];
        for _ in 0..2 * N {
            let n = receiver.recv(&mut buf).unwrap();
            let i = u32::from_le_bytes(buf[..n].try_into().unwrap());
            assert!(!seen[i as usize], "datagram {i} twice");
            seen[i as usize] = true;
        }
    });
    s1.join().unwrap();
    s2.join().unwrap();
    r.join().unwrap();
}

#[test]
fn unix_datagram_write_timeout_and_pair() {
    corun::go!(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while a.send(b"fill").is_ok() {
            sent += 1;
            assert!(sent < 1_000_000, "the queue never filled");
        }
        a.set_nonblocking(false).unwrap();
        a.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let t = Instant::now();
        assert_eq!(a.send(b"more").unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(
            t.elapsed() >= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        a.send(b"room").unwrap(); // room again
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut got = 0;
        while b.recv(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, sent); // sent - 1 left + "room"
    })
    .join()
    .unwrap();
}

// ---- out of file descriptors (in a child process, as in tests/net_tcp.rs) ----

#[test]
fn unix_accept_out_of_file_descriptors_errors_then_serves_again() {
    let out = support::run_child("child_unix_accept_out_of_fds");
    support::assert_child_done(&out);
}

#[test]
#[ignore = "run as a child by unix_accept_out_of_file_descriptors_errors_then_serves_again"]
fn child_unix_accept_out_of_fds() {
    if !support::is_child("child_unix_accept_out_of_fds") {
        return;
    }
    let dir = TempDir::new("emfile");
    let path = dir.path("s");
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let l = UnixListener::bind(&path).unwrap();
    let _queued = std::os::unix::net::UnixStream::connect(&path).unwrap();
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
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f);
        assert!(fillers.len() < 100_000);
    }
    let p = path.clone();
    let errors = rt
        .spawn(move || {
            let mut fillers = Some(fillers);
            let mut errors = 0;
            loop {
                match l.accept() {
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                        errors += 1;
                        if errors == 3 {
                            fillers = None;
                        }
                        assert!(
                            errors < 500,
                            "accept kept failing after descriptors were freed"
                        );
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            assert!(fillers.is_none());
            // Serving as usual afterwards, with the queue empty in between.
            let late = corun::go!(move || {
                corun::sleep(Duration::from_millis(50));
                UnixStream::connect(&p).unwrap()
            });
            l.accept().unwrap();
            late.join().unwrap();
            errors
        })
        .join()
        .unwrap();
    println!("accept failed {errors} times with EMFILE, then served");
    support::child_done();
}
