//! A small HTTP/1.1 server on corun: one coroutine per connection, keep-alive and
//! pipelining, `GET /` answered with `Hello, World!`, anything else with 404.
//!
//!     cargo run --release --example http_hello [ADDR] [WORKERS]
//!     wrk -t2 -c100 -d10s http://127.0.0.1:8080/
//!
//! With `--self-test` it serves on a free port, sends a few pipelined and keep-alive
//! requests itself, checks the answers and exits (the test suite runs this).
//!
//! Each connection reads into a buffer, answers every complete request in it (a
//! pipelining client sends several before reading), and writes the answers in one
//! call. The code is plain blocking code: a read that would block parks the
//! coroutine on the netpoller and frees its worker for the other connections.

use corun::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};

const HELLO: &[u8] = b"Hello, World!";

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--self-test") {
        return self_test();
    }
    let addr = args.first().map_or("127.0.0.1:8080", String::as_str);
    let workers = args.get(1).and_then(|w| w.parse().ok());
    let mut b = corun::Runtime::builder();
    if let Some(w) = workers {
        b = b.workers(w);
    }
    let rt = b.build()?;
    let listener = TcpListener::bind(addr)?;
    eprintln!(
        "http_hello: listening on http://{}/",
        listener.local_addr()?
    );
    rt.block_on(move || serve(listener))
}

/// Accepts forever, a coroutine per connection (`benches/http.rs` serves this too).
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                corun::spawn(move || {
                    // A client that resets or sends garbage ends only its connection.
                    let _ = connection(s);
                });
            }
            // Out of descriptors or similar: report, keep serving (accept retries).
            Err(e) => eprintln!("http_hello: accept: {e}"),
        }
    }
}

/// Serves one connection until the client closes it or asks to.
fn connection(mut s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        if filled == buf.len() {
            if buf.len() >= 64 * 1024 {
                s.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(()); // the client closed
        }
        filled += n;
        // Answer every complete request in the buffer.
        let mut start = 0;
        let mut close = false;
        while start < filled && !close {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[start..filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    close = wants_close(&req);
                    respond(&req, &mut out, close);
                    start += len;
                }
                Ok(httparse::Status::Partial) => break,
                Err(e) => {
                    out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    s.write_all(&out)?;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if !out.is_empty() {
            s.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
    }
}

fn wants_close(req: &httparse::Request) -> bool {
    let conn = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("connection"));
    match conn {
        Some(h) => h.value.eq_ignore_ascii_case(b"close"),
        // HTTP/1.0 closes unless asked to keep alive.
        None => req.version == Some(0),
    }
}

fn respond(req: &httparse::Request, out: &mut Vec<u8>, close: bool) {
    let (status, body): (&str, &[u8]) = match (req.method, req.path) {
        (Some("GET"), Some("/")) => ("200 OK", HELLO),
        (Some("GET"), _) => ("404 Not Found", b"Not Found"),
        _ => ("405 Method Not Allowed", b"Method Not Allowed"),
    };
    // Keep-alive is HTTP/1.1's default: only a 1.0 client needs to hear it.
    let conn = match (close, req.version) {
        (true, _) => "Connection: close\r\n",
        (false, Some(0)) => "Connection: keep-alive\r\n",
        (false, _) => "",
    };
    // Content-Length lets the client find the end without a close.
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nServer: corun\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{conn}\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

/// Serves on a free port and checks keep-alive, pipelining, 404 and close.
fn self_test() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    corun::spawn(move || serve(listener));
    let client = corun::spawn(move || -> io::Result<String> {
        let mut s = TcpStream::connect(addr)?;
        // Two pipelined requests in one write, then one that asks to close.
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut all = String::new();
        s.read_to_string(&mut all)?; // ends when the server closes
        Ok(all)
    });
    let all = client.join().expect("client coroutine")?;
    let oks = all.matches("HTTP/1.1 200 OK").count();
    let missing = all.matches("HTTP/1.1 404 Not Found").count();
    if oks != 2 || missing != 1 || all.matches(HELLO_STR).count() != 2 {
        return Err(io::Error::other(format!("unexpected answers:\n{all}")));
    }
    println!("http_hello self-test: 3 answers (2 pipelined), connection closed on request");
    Ok(())
}

const HELLO_STR: &str = "Hello, World!";
