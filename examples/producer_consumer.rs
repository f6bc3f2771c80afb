//! Python's generator producer/consumer, replayed on `corun::Generator`.
//!
//! The consumer is a generator that receives each item through `send` and answers
//! with a status; the producer drives it. In Python:
//!
//! ```text
//! def consumer():                       def produce(c):
//!     r = ''                                c.send(None)
//!     while True:                           for n in range(1, 6):
//!         n = yield r                           print('[PRODUCER] Producing', n)
//!         if not n:                             r = c.send(n)
//!             return                            print('[PRODUCER] Consumer return:', r)
//!         print('[CONSUMER] Consuming', n)  c.close()
//!         r = '200 OK'
//! ```
//!
//! Run with `cargo run --example producer_consumer`.

use corun::{Co, Generator};

/// The consumer: receives `Some(item)` through `send`, answers with a status;
/// `None` (Python's falsy `n`) ends it, and it returns how many items it took.
fn consumer(co: &Co<&'static str, Option<u32>>) -> u32 {
    let mut status = "";
    let mut consumed = 0;
    loop {
        let Some(n) = co.yield_(status) else {
            println!("[CONSUMER] No more items, returning");
            return consumed;
        };
        println!("[CONSUMER] Consuming {n}...");
        consumed += 1;
        status = "200 OK";
    }
}

/// The producer: starts the consumer, sends it five items, then ends it.
fn produce(c: &mut Generator<&'static str, Option<u32>, u32>) {
    c.resume(); // Python's c.send(None): runs the consumer to its first yield
    for n in 1..=5 {
        println!("[PRODUCER] Producing {n}...");
        let r = c.send(Some(n)).expect("the consumer is still running");
        println!("[PRODUCER] Consumer return: {r}");
    }
    // Python's c.close() would just unwind it; sending None lets it return a value.
    assert_eq!(c.send(None), None);
}

fn main() {
    println!("-- on the main thread, no runtime --");
    let mut c = Generator::new(consumer);
    produce(&mut c);
    println!("consumer returned {:?}\n", c.into_return());

    println!("-- inside a corun coroutine, the producer a generator too --");
    // The producer yields each item it makes and receives the consumer's answer;
    // the coroutine carries values between the two. Both generators run on the
    // coroutine's thread, and the coroutine may yield or park between steps.
    let h = corun::spawn(|| {
        let mut producer = Generator::new(|co: &Co<u32, &'static str>| {
            for n in 1..=3 {
                println!("[PRODUCER] Producing {n}...");
                let r = co.yield_(n);
                println!("[PRODUCER] Consumer return: {r}");
            }
        });
        let mut consumer = Generator::new(consumer);
        consumer.resume();
        let mut item = producer.resume();
        while let Some(n) = item {
            corun::yield_now(); // other coroutines may run between the steps
            let status = consumer.send(Some(n)).expect("consumer running");
            item = producer.send(status);
        }
        consumer.send(None);
        consumer.into_return()
    });
    println!("consumer returned {:?}", h.join().unwrap());
}
