//! The seeds' gevent downloader: fetch many URLs at once with coroutines, then the
//! same URLs one by one, and compare the times.
//!
//! ```text
//! cargo run --release --example fetch_many -- [n_urls] [delay_ms]   # default 20 50
//! ```
//!
//! It starts its own small HTTP server (coroutines too) on a loopback port, which
//! answers each GET after `delay_ms`, as a slow remote site would. Each fetch is a
//! `TcpStream` doing `GET`, reading the whole response and parsing the status line
//! and `Content-Length`: code that reads as blocking IO, while a coroutine waiting on
//! its socket gives its worker to the others.

use corun::net::{TcpListener, TcpStream};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// Serves forever: after `delay`, `GET /<path>` gets a body naming the path.
fn serve(listener: TcpListener, delay: Duration) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        corun::go!(move || {
            let mut reader = BufReader::new(&conn);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                return;
            }
            // Skip the headers, up to the empty line.
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == "\r\n" || line == "\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            corun::sleep(delay); // a slow site
            let body = format!("you asked for {path}\n");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = (&conn).write_all(resp.as_bytes());
        });
    }
}

/// Fetches `url` (`http://host:port/path`); returns the body.
fn fetch(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(host).map_err(|e| format!("{url}: connect: {e}"))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{url}: send: {e}"))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .map_err(|e| format!("{url}: receive: {e}"))?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: the response has no end of headers"))?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{url}: {status}"));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{url}: no Content-Length"))?;
    if body.len() != length {
        return Err(format!(
            "{url}: body of {} bytes, Content-Length {length}",
            body.len()
        ));
    }
    Ok(body.to_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("usage: fetch_many [n_urls] [delay_ms]  ({s:?} is not a number)");
                std::process::exit(2)
            })
        })
    };
    let n = number(0, 20) as usize;
    let delay = Duration::from_millis(number(1, 50));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    corun::go!(move || serve(listener, delay));
    let urls: Vec<String> = (0..n).map(|i| format!("http://{addr}/page/{i}")).collect();

    // All at once: one coroutine per URL.
    let start = Instant::now();
    let hs: Vec<_> = urls
        .iter()
        .cloned()
        .map(|u| corun::go!(move || fetch(&u)))
        .collect();
    let mut bytes = 0;
    for h in hs {
        bytes += h.join().unwrap().unwrap_or_else(|e| panic!("{e}")).len();
    }
    let concurrent = start.elapsed();
    println!("{n} URLs fetched concurrently: {concurrent:.2?} ({bytes} bytes)");

    // One by one (still in a coroutine; each fetch waits for the last).
    let start = Instant::now();
    let bytes = corun::go!(move || {
        urls.iter()
            .map(|u| fetch(u).unwrap_or_else(|e| panic!("{e}")).len())
            .sum::<usize>()
    })
    .join()
    .unwrap();
    let sequential = start.elapsed();
    println!("{n} URLs fetched one by one: {sequential:.2?} ({bytes} bytes)");
    println!(
        "concurrency saved {:.1}x (each answer takes {delay:?})",
        sequential.as_secs_f64() / concurrent.as_secs_f64()
    );
}
