//! The netpoller starts no thread: heavy socket use on a two-worker runtime leaves
//! the process with the threads it had (its own binary, so no other test's threads
//! come and go meanwhile). Addresses are `SocketAddr` literals: a name would be
//! resolved on the blocking pool, whose threads are not the poller's.

use corun::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn no_thread_beyond_the_workers_is_started_by_the_poller() {
    let rt = corun::Runtime::builder()
        .workers(2)
        .extra_threads(0)
        .build()
        .unwrap();
    // Let the workers start.
    rt.spawn(|| corun::sleep(Duration::from_millis(1)))
        .join()
        .unwrap();
    let before = threads();
    let lit: SocketAddr = "127.0.0.1:0".parse().unwrap();
    rt.spawn(move || {
        // 300 TCP connections echoing at once.
        let l = TcpListener::bind(lit).unwrap();
        let addr = l.local_addr().unwrap();
        let server = corun::go!(move || {
            let hs: Vec<_> = (0..300)
                .map(|_| {
                    let (s, _) = l.accept().unwrap();
                    corun::go!(move || {
                        let mut b = [0u8; 64];
                        loop {
                            match (&s).read(&mut b).unwrap() {
                                0 => break,
                                n => (&s).write_all(&b[..n]).unwrap(),
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        let clients: Vec<_> = (0..300)
            .map(|_| {
                corun::go!(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    for i in 0..20u8 {
                        (&s).write_all(&[i; 16]).unwrap();
                        let mut b = [0u8; 16];
                        (&s).read_exact(&mut b).unwrap();
                        assert_eq!(b, [i; 16]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();

        // A read timeout, UDP, Unix streams and datagrams.
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert!((&a).read(&mut [0u8; 1]).is_err());
        let u1 = UdpSocket::bind(lit).unwrap();
        let u2 = UdpSocket::bind(lit).unwrap();
        let u1a = u1.local_addr().unwrap();
        let echo = corun::go!(move || {
            let mut b = [0u8; 8];
            for _ in 0..100 {
                let (n, from) = u1.recv_from(&mut b).unwrap();
                u1.send_to(&b[..n], from).unwrap();
            }
        });
        u2.connect(u1a).unwrap();
        for i in 0..100u8 {
            u2.send(&[i]).unwrap();
            let mut b = [0u8; 8];
            assert_eq!(u2.recv(&mut b).unwrap(), 1);
        }
        echo.join().unwrap();
        let (d1, d2) = UnixDatagram::pair().unwrap();
        let rx = corun::go!(move || {
            corun::sleep(Duration::from_millis(10));
            let mut b = [0u8; 4];
            for _ in 0..1000 {
                d2.recv(&mut b).unwrap();
            }
        });
        for i in 0..1000u32 {
            d1.send(&i.to_le_bytes()).unwrap();
        }
        rx.join().unwrap();
    })
    .join()
    .unwrap();
    let after = threads();
    assert_eq!(before, after, "threads before and after heavy socket use");
    assert_eq!(corun::blocking::threads(), 0, "the blocking pool was used");
}
