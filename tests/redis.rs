//! A real Redis server (Debian's `redis-server`, started here on a free loopback
//! port) used by 1,000 coroutines two ways: the `redis` crate's tokio-based async
//! API through `corun::await_future`'s tokio bridge, and a small blocking RESP
//! client on `corun::net`. Every value is checked, across the two paths too.
//! Skipped with a message when `redis-server` is not installed.
//!
//!     cargo test --release --features tokio --test redis

use redis::AsyncCommands;
use std::collections::BTreeMap;

#[path = "support/redis.rs"]
mod redis_support;

use redis_support::{RedisServer, Resp};

const N: usize = 1000;

#[test]
fn a_thousand_coroutines_use_redis_through_the_bridge_and_through_corun_net() {
    let server = match RedisServer::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let addr = server.addr;
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let client = redis::Client::open(server.url()).unwrap();

    // The redis crate through the bridge: one multiplexed connection (its driver
    // is `tokio::spawn`ed onto the bridge's tokio runtime), shared by every
    // coroutine.
    let conn = rt.block_on(move || {
        corun::await_future(client.get_multiplexed_async_connection())
            .expect("a connection to redis-server")
    });
    let hs: Vec<_> = (0..N)
        .map(|i| {
            let mut conn = conn.clone();
            rt.spawn(move || {
                let key = format!("bridge:{i}");
                let value = format!("value {i} from the bridge");
                let got: Option<String> = corun::await_future(async {
                    conn.set::<_, _, ()>(&key, &value).await?;
                    conn.incr::<_, _, i64>("hits", 1).await?;
                    conn.get(&key).await
                })
                .unwrap();
                assert_eq!(got.as_deref(), Some(value.as_str()));
                std::thread::current().name().unwrap().to_owned()
            })
        })
        .collect();
    let mut by_worker = BTreeMap::new();
    for h in hs {
        *by_worker.entry(h.join().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(by_worker.values().sum::<usize>(), N, "{by_worker:?}");

    // The same over corun::net, blocking style: a connection per coroutine; each
    // also reads what the bridge wrote.
    let hs: Vec<_> = (0..N)
        .map(|i| {
            rt.spawn(move || {
                let mut c = Resp::connect(addr).unwrap();
                let key = format!("resp:{i}");
                let value = format!("value {i} from corun::net");
                c.set(&key, &value).unwrap();
                c.incr("hits").unwrap();
                assert_eq!(c.get(&key).unwrap().as_deref(), Some(value.as_str()));
                assert_eq!(
                    c.get(&format!("bridge:{i}")).unwrap(),
                    Some(format!("value {i} from the bridge"))
                );
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }

    // And the bridge reads every value written over corun::net.
    let mut conn2 = conn.clone();
    let (resp_values, hits) = rt.block_on(move || {
        corun::await_future(async {
            let keys: Vec<String> = (0..N).map(|i| format!("resp:{i}")).collect();
            let values: Vec<Option<String>> = conn2.mget(&keys).await?;
            let hits: i64 = conn2.get("hits").await?;
            Ok::<_, redis::RedisError>((values, hits))
        })
        .unwrap()
    });
    for (i, v) in resp_values.iter().enumerate() {
        assert_eq!(
            v.as_deref(),
            Some(format!("value {i} from corun::net").as_str())
        );
    }
    assert_eq!(hits, 2 * N as i64);
    drop(conn);
    drop(rt);
}
