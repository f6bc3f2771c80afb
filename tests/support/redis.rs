//! A real Redis server for tests, the example and the bench (Debian's
//! `redis-server` on a free loopback port, killed on drop), and a small blocking
//! RESP client over `corun::net::TcpStream`.
//!
//! Shared by `tests/redis.rs`, `examples/redis_service.rs`, `benches/bridge.rs` and
//! `benches/resp.rs` through `#[path]`; none uses all of it.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child without persistence, listening on loopback.
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts one on a free port and waits (up to 10 s) until it accepts
    /// connections. `Err` says why it could not, and how to install it.
    pub fn start() -> Result<RedisServer, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("redis-server could not be started ({e}): `apt-get install redis-server`")
            })?;
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(server.addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not listen on {}", server.addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Its address as the `redis` crate takes it.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A blocking RESP client: one request, then its reply. In a coroutine its waits
/// park the coroutine on corun's netpoller.
pub struct Resp {
    r: BufReader<corun::net::TcpStream>,
    w: BufWriter<corun::net::TcpStream>,
}

impl Resp {
    pub fn connect(addr: SocketAddr) -> io::Result<Resp> {
        let s = corun::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Resp {
            r: BufReader::new(s.try_clone()?),
            w: BufWriter::new(s),
        })
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        write!(self.w, "*{}\r\n", args.len())?;
        for a in args {
            write!(self.w, "${}\r\n", a.len())?;
            self.w.write_all(a)?;
            self.w.write_all(b"\r\n")?;
        }
        self.w.flush()?;
        read_reply(&mut self.r)
    }

    pub fn set(&mut self, key: &str, value: &str) -> io::Result<()> {
        match self.cmd(&[b"SET", key.as_bytes(), value.as_bytes()])? {
            Reply::Status(s) if s == "OK" => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    pub fn get(&mut self, key: &str) -> io::Result<Option<String>> {
        match self.cmd(&[b"GET", key.as_bytes()])? {
            Reply::Bulk(v) => Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned())),
            r => Err(unexpected(r)),
        }
    }

    pub fn incr(&mut self, key: &str) -> io::Result<i64> {
        match self.cmd(&[b"INCR", key.as_bytes()])? {
            Reply::Int(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }
}

fn unexpected(r: Reply) -> io::Error {
    io::Error::other(format!("unexpected reply {r:?}"))
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    let int = || {
        rest.parse::<i64>()
            .map_err(|_| io::Error::other(format!("bad RESP line {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(int()?),
        "$" => match int()? {
            n if n < 0 => Reply::Bulk(None),
            n => {
                let mut b = vec![0; n as usize + 2];
                r.read_exact(&mut b)?;
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
        },
        "*" => match int()? {
            n if n < 0 => Reply::Array(None),
            n => Reply::Array(Some(
                (0..n).map(|_| read_reply(r)).collect::<io::Result<_>>()?,
            )),
        },
        _ => return Err(io::Error::other(format!("bad RESP line {line:?}"))),
    })
}
