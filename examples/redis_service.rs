//! A session service on a real Redis, from coroutines, two ways:
//!
//! - the `redis` crate's tokio-based async API, called from coroutines as if it
//!   were blocking, through `corun::await_future` (cargo feature `tokio`: corun
//!   provides the tokio reactor, and runs the crate's multiplexer task on it);
//! - a small blocking RESP client on `corun::net` (`tests/support/redis.rs`), from a
//!   pool of connections kept in a corun channel.
//!
//!     cargo run --release --features tokio --example redis_service [N] [REDIS_ADDR]
//!
//! Each of N requests (default 1000), one coroutine each, logs a user in: it stores
//! a session, counts the login and reads the session back; every value is checked.
//! Without `REDIS_ADDR` it starts Debian's `redis-server` on a free loopback port
//! (`apt-get install redis-server`), and says so and exits if it cannot.

use redis::AsyncCommands;
use std::net::SocketAddr;
use std::time::Instant;

#[path = "../tests/support/redis.rs"]
mod redis_support;

use redis_support::{RedisServer, Resp};

/// The requests' handler, through the redis crate and the bridge.
fn login_via_redis_crate(conn: &mut redis::aio::MultiplexedConnection, user: usize) -> String {
    let key = format!("session:bridge:{user}");
    let session = format!("user {user}, logged in through the redis crate");
    corun::await_future(async {
        conn.set_ex::<_, _, ()>(&key, &session, 600).await?;
        conn.incr::<_, _, i64>("logins", 1).await?;
        conn.get::<_, String>(&key).await
    })
    .map(|got| {
        assert_eq!(got, session, "session of user {user}");
        got
    })
    .unwrap_or_else(|e| panic!("redis (bridge), user {user}: {e}"))
}

/// The same handler over corun::net, with a connection from the pool.
fn login_via_corun_net(pool: &Pool, user: usize) -> String {
    let key = format!("session:resp:{user}");
    let session = format!("user {user}, logged in over corun::net");
    let mut c = pool.take();
    let got = (|| {
        c.cmd(&[b"SET", key.as_bytes(), session.as_bytes(), b"EX", b"600"])?;
        c.incr("logins")?;
        c.get(&key)
    })()
    .unwrap_or_else(|e| panic!("redis (corun::net), user {user}: {e}"));
    pool.give(c);
    assert_eq!(
        got.as_deref(),
        Some(session.as_str()),
        "session of user {user}"
    );
    session
}

/// Connections shared by the coroutines: a coroutine waits (parks) for a free one.
struct Pool(corun::chan::Sender<Resp>, corun::chan::Receiver<Resp>);

impl Pool {
    fn new(addr: SocketAddr, size: usize) -> Pool {
        let (tx, rx) = corun::chan::bounded(size);
        for _ in 0..size {
            tx.send(Resp::connect(addr).expect("connect to redis"))
                .unwrap();
        }
        Pool(tx, rx)
    }
    fn take(&self) -> Resp {
        self.1.recv().unwrap()
    }
    fn give(&self, c: Resp) {
        self.0.send(c).unwrap();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(1000, |a| a.parse().expect("N: a number"));
    let (_server, addr) = match args.next() {
        Some(a) => (
            None,
            a.parse::<SocketAddr>().expect("REDIS_ADDR: host:port"),
        ),
        None => match RedisServer::start() {
            Ok(s) => {
                let addr = s.addr;
                (Some(s), addr)
            }
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        },
    };
    println!("redis on {addr}");
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    // The connection is made inside await_future: its multiplexer is spawned on
    // the bridge's tokio runtime.
    let conn = corun::go!(move || corun::await_future(client.get_multiplexed_async_connection()))
        .join()
        .unwrap()
        .expect("connect to redis");

    let t0 = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|user| {
            let mut conn = conn.clone();
            corun::go!(move || login_via_redis_crate(&mut conn, user))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!(
        "{n} logins through the redis crate (tokio, via corun::await_future): {:?}, every value checked",
        t0.elapsed()
    );

    let pool = std::sync::Arc::new(Pool::new(addr, 50));
    let t0 = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|user| {
            let pool = pool.clone();
            corun::go!(move || login_via_corun_net(&pool, user))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!(
        "{n} logins over corun::net (blocking RESP, 50 pooled connections): {:?}, every value checked",
        t0.elapsed()
    );

    let mut c = Resp::connect(addr).unwrap();
    let logins = c.get("logins").unwrap();
    assert_eq!(logins, Some((2 * n).to_string()));
    println!("logins counted: {}", 2 * n);
}
