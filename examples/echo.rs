//! An echo server and its load-generating client, written as blocking code that runs
//! on coroutines (the seeds' asyncio echo server).
//!
//! ```text
//! cargo run --release --example echo -- server 127.0.0.1:7000
//! cargo run --release --example echo -- client 127.0.0.1:7000 <n_clients> <round_trips> [bytes]
//! cargo run --release --example echo                 # both in one process, small sizes
//! ```
//!
//! The client opens `n_clients` connections, each making `round_trips` round trips of
//! `bytes` bytes (64 by default), and prints the round trips per second.

use corun::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

fn usage() -> ! {
    eprintln!(
        "usage: echo server <addr>\n       echo client <addr> <n_clients> <round_trips> [bytes]\n       \
         echo            (a server and a client in one process, small sizes)"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    let Some(s) = args.get(i) else { usage() };
    s.parse().unwrap_or_else(|_| {
        eprintln!("echo: {what} must be a number, got {s:?}");
        usage()
    })
}

/// Accepts forever, one coroutine per connection echoing what it reads.
fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, a reset before accept: report and keep serving.
                eprintln!("echo: accept failed: {e}");
                continue;
            }
        };
        corun::go!(move || {
            let _ = conn.set_nodelay(true);
            let mut buf = [0u8; 4096];
            loop {
                match (&conn).read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if (&conn).write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Runs the clients; returns the round trips made per second.
fn load(addr: SocketAddr, clients: usize, round_trips: usize, bytes: usize) -> f64 {
    let start = Instant::now();
    let hs: Vec<_> = (0..clients)
        .map(|i| {
            corun::go!(move || {
                let s = TcpStream::connect(addr).unwrap_or_else(|e| {
                    panic!("client {i}: cannot connect to {addr}: {e} (is the server running?)")
                });
                s.set_nodelay(true).unwrap();
                let msg = vec![i as u8; bytes];
                let mut back = vec![0u8; bytes];
                for _ in 0..round_trips {
                    (&s).write_all(&msg).unwrap();
                    (&s).read_exact(&mut back).unwrap();
                    assert_eq!(back, msg, "the server echoed something else");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    (clients * round_trips) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr: SocketAddr = arg(&args, 1, "the address");
            let l = TcpListener::bind(addr).unwrap_or_else(|e| {
                eprintln!("echo: cannot listen on {addr}: {e}");
                std::process::exit(1)
            });
            println!("echo server listening on {}", l.local_addr().unwrap());
            corun::go!(move || serve(l)).join().unwrap();
        }
        Some("client") => {
            let addr: SocketAddr = arg(&args, 1, "the address");
            let clients: usize = arg(&args, 2, "n_clients");
            let rts: usize = arg(&args, 3, "round_trips");
            let bytes: usize = if args.len() > 4 {
                arg(&args, 4, "bytes")
            } else {
                64
            };
            let rate = corun::go!(move || load(addr, clients, rts, bytes))
                .join()
                .unwrap();
            println!(
                "{clients} clients x {rts} round trips of {bytes} bytes: {rate:.0} round trips/s"
            );
        }
        None => {
            let l = TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
            let addr = l.local_addr().unwrap();
            corun::go!(move || serve(l));
            let (clients, rts, bytes) = (10, 1000, 64);
            let rate = corun::go!(move || load(addr, clients, rts, bytes))
                .join()
                .unwrap();
            println!(
                "{clients} clients x {rts} round trips of {bytes} bytes: {rate:.0} round trips/s"
            );
        }
        Some(_) => usage(),
    }
}
