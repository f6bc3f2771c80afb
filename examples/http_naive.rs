//! A hello HTTP/1.1 server written the way one first writes it: a coroutine per
//! connection, `BufReader::read_line` for the request line and the headers,
//! `BufWriter` for the answer, keep-alive. Every request gets `Hello, World!`,
//! whatever its method and path; a request body is not read.
//!
//!     cargo run --release --example http_naive [ADDR]    (default 127.0.0.1:8080)
//!     wrk -t2 -c100 -d10s http://127.0.0.1:8080/
//!
//! `benches/http.rs` measures it beside `examples/http_hello.rs`, which parses with
//! `httparse` and writes all pipelined answers at once.

use corun::net::{TcpListener, TcpStream};
use std::io::{self, BufRead, BufReader, BufWriter, Write};

const HELLO: &str = "Hello, World!";

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:8080"))?;
    println!("http_naive listening on {}", listener.local_addr()?);
    corun::go!(move || serve(listener))
        .join()
        .expect("accept loop")
}

/// Accepts forever, a coroutine per connection (`benches/http.rs` serves this too).
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                corun::go!(move || {
                    // A client that resets ends only its own connection.
                    let _ = connection(s);
                });
            }
            Err(e) => eprintln!("http_naive: accept: {e}"),
        }
    }
}

/// Answers requests until the client closes the connection or asks to.
fn connection(s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut writer = BufWriter::new(s);
    let mut line = String::new();
    loop {
        // The request line, then headers up to the blank line.
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                close |= name.eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close");
            }
        }
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{HELLO}",
            HELLO.len()
        )?;
        if close {
            return writer.flush();
        }
        // Pipelined requests are answered together: flush once the input runs dry.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}
