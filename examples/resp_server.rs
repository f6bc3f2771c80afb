//! A key-value server speaking Redis's protocol (RESP), written the plain way: a
//! coroutine per connection, `BufReader`/`BufWriter`, a `Vec` per argument, a sharded
//! map under `corun::sync::Mutex`, the default runtime. It answers `PING`, `ECHO`,
//! `SET`, `GET`, `DEL`, `EXISTS`, `INCR`, `DBSIZE` and `CONFIG GET` (with nothing),
//! enough for `redis-cli` and `redis-benchmark -t set,get`.
//!
//!     cargo run --release --example resp_server [ADDR]    (default 127.0.0.1:6380)
//!     redis-benchmark -p 6380 -t set,get -n 200000 -c 50
//!
//! `resp_server --self-test` starts it on a free port, runs a client of its own over
//! corun sockets, checks the answers and exits.

use corun::net::{TcpListener, TcpStream};
use corun::sync::Mutex;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::sync::Arc;

const SHARDS: usize = 64;

/// The keyspace: a map per shard, each under its own lock.
struct Db {
    shards: Vec<Mutex<HashMap<Vec<u8>, Vec<u8>>>>,
}

impl Db {
    fn new() -> Db {
        Db {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Vec<u8>, Vec<u8>>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }
}

/// Reads one command: an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), or
/// an inline command (`PING\r\n`). `None` at the end of the stream.
fn read_command(r: &mut impl BufRead) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    let line = trim_crlf(&line);
    let Some(count) = line.strip_prefix(b"*") else {
        let words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        return Ok(Some(words));
    };
    let n = parse_len(count)?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let mut head = Vec::new();
        r.read_until(b'\n', &mut head)?;
        let len = match trim_crlf(&head).strip_prefix(b"$") {
            Some(len) => parse_len(len)?,
            None => return Err(bad("expected a bulk string ('$')")),
        };
        let mut arg = vec![0; len + 2];
        r.read_exact(&mut arg)?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(Some(args))
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line)
}

fn parse_len(digits: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad length"))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("protocol error: {what}"),
    )
}

fn bulk(w: &mut impl Write, v: Option<&[u8]>) -> io::Result<()> {
    match v {
        Some(v) => {
            write!(w, "${}\r\n", v.len())?;
            w.write_all(v)?;
            w.write_all(b"\r\n")
        }
        None => w.write_all(b"$-1\r\n"),
    }
}

/// Runs one command and writes its reply.
fn execute(db: &Db, args: &[Vec<u8>], w: &mut impl Write) -> io::Result<()> {
    let Some(name) = args.first() else {
        return Ok(());
    };
    let arity = |n: usize| args.len() == n;
    match name.to_ascii_uppercase().as_slice() {
        b"PING" if arity(1) => w.write_all(b"+PONG\r\n"),
        b"PING" | b"ECHO" if arity(2) => bulk(w, Some(&args[1])),
        b"SET" if args.len() >= 3 => {
            let mut shard = db.shard(&args[1]).lock();
            shard.insert(args[1].clone(), args[2].clone());
            drop(shard);
            w.write_all(b"+OK\r\n")
        }
        b"GET" if arity(2) => {
            let shard = db.shard(&args[1]).lock();
            bulk(w, shard.get(&args[1]).map(Vec::as_slice))
        }
        b"DEL" | b"EXISTS" if args.len() >= 2 => {
            let del = name.eq_ignore_ascii_case(b"DEL");
            let n = args[1..]
                .iter()
                .filter(|k| {
                    let mut shard = db.shard(k).lock();
                    if del {
                        shard.remove(k.as_slice()).is_some()
                    } else {
                        shard.contains_key(k.as_slice())
                    }
                })
                .count();
            write!(w, ":{n}\r\n")
        }
        b"INCR" if arity(2) => {
            let mut shard = db.shard(&args[1]).lock();
            let v = shard
                .entry(args[1].clone())
                .or_insert_with(|| b"0".to_vec());
            match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(n) => {
                    *v = (n + 1).to_string().into_bytes();
                    write!(w, ":{}\r\n", n + 1)
                }
                None => w.write_all(b"-ERR value is not an integer or out of range\r\n"),
            }
        }
        b"DBSIZE" if arity(1) => {
            let n: usize = db.shards.iter().map(|s| s.lock().len()).sum();
            write!(w, ":{n}\r\n")
        }
        // redis-benchmark asks for settings before it starts: none here.
        b"CONFIG" => w.write_all(b"*0\r\n"),
        _ => write!(
            w,
            "-ERR unknown command or wrong number of arguments for '{}'\r\n",
            String::from_utf8_lossy(name)
        ),
    }
}

/// Serves one connection until the client goes away.
fn serve(db: &Db, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = BufWriter::new(stream);
    while let Some(args) = read_command(&mut r)? {
        execute(db, &args, &mut w)?;
        // Pipelined commands are answered together: flush once the input runs dry.
        if r.buffer().is_empty() {
            w.flush()?;
        }
    }
    w.flush()
}

fn listen(addr: &str) -> TcpListener {
    TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("resp_server: cannot listen on {addr}: {e}");
        std::process::exit(1);
    })
}

fn accept_loop(l: TcpListener, db: Arc<Db>) {
    loop {
        match l.accept() {
            Ok((s, _)) => {
                let db = db.clone();
                corun::go!(move || {
                    if let Err(e) = serve(&db, s) {
                        if e.kind() == io::ErrorKind::InvalidData {
                            eprintln!("resp_server: {e}");
                        }
                    }
                });
            }
            Err(e) => eprintln!("resp_server: accept: {e}"),
        }
    }
}

/// Sends `cmd` as a RESP array and reads one reply line (plus a bulk body).
fn call(r: &mut impl BufRead, w: &mut impl Write, cmd: &[&str]) -> String {
    write!(w, "*{}\r\n", cmd.len()).unwrap();
    for a in cmd {
        write!(w, "${}\r\n{a}\r\n", a.len()).unwrap();
    }
    w.flush().unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    if let Some(n) = line
        .strip_prefix('$')
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        let mut body = vec![0; n + 2];
        r.read_exact(&mut body).unwrap();
        line = String::from_utf8_lossy(&body[..n]).into_owned();
    }
    line.trim_end().to_owned()
}

fn self_test() {
    let l = listen("127.0.0.1:0");
    let addr = l.local_addr().unwrap();
    let db = Arc::new(Db::new());
    corun::go!(move || accept_loop(l, db));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            corun::go!(move || {
                let s = TcpStream::connect(addr).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = BufWriter::new(s);
                assert_eq!(call(&mut r, &mut w, &["PING"]), "+PONG");
                for i in 0..200 {
                    let (k, v) = (format!("k{c}:{i}"), format!("v{i}"));
                    assert_eq!(call(&mut r, &mut w, &["SET", &k, &v]), "+OK");
                    assert_eq!(call(&mut r, &mut w, &["GET", &k]), v);
                }
                assert_eq!(call(&mut r, &mut w, &["GET", "missing"]), "$-1");
                assert_eq!(call(&mut r, &mut w, &["INCR", &format!("n{c}")]), ":1");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    println!("resp_server self-test: 8 clients x 200 SET/GET answered correctly");
}

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--self-test") => self_test(),
        other => {
            let addr = other.unwrap_or("127.0.0.1:6380");
            let l = listen(addr);
            println!("resp_server listening on {}", l.local_addr().unwrap());
            let db = Arc::new(Db::new());
            corun::go!(move || accept_loop(l, db)).join().unwrap();
        }
    }
}
