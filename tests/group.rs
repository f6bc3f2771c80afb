//! `corun::Group` (Go's errgroup): results in order, the first failure cancels the
//! group's context, panics propagate, and dropping a group cancels and waits for
//! its members.

use corun::chan;
use corun::sync::Mutex;
use corun::{Context, ContextError, Group};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(20);
const FOREVER: Duration = Duration::from_secs(3600);
const SOON: Duration = Duration::from_secs(10);

#[test]
fn join_returns_values_in_spawn_order() {
    let mut g: Group<usize, ()> = Group::new();
    for i in 0..10 {
        g.spawn(move |_| {
            corun::sleep(Duration::from_millis(10 - i as u64)); // finish in reverse
            Ok(i * i)
        });
    }
    assert_eq!(g.len(), 10);
    assert_eq!(g.join(), Ok((0..10).map(|i| i * i).collect::<Vec<_>>()));
}

#[test]
fn a_failing_member_cancels_the_group() {
    let m = Arc::new(Mutex::new(()));
    let held = m.lock();
    let mut g = Group::new();
    let (_tx, rx) = chan::bounded::<u8>(0);
    g.spawn(move |ctx| rx.recv_ctx(&ctx).map(|_| "got").map_err(|e| e.to_string()));
    g.spawn(|ctx| {
        corun::sleep_ctx(FOREVER, &ctx)
            .map(|_| "slept")
            .map_err(|e| e.to_string())
    });
    let m2 = m.clone();
    g.spawn(move |ctx| {
        m2.lock_ctx(&ctx)
            .map(|_| "locked")
            .map_err(|e| e.to_string())
    });
    g.spawn(|ctx| {
        // Waits on done() in a select.
        let (_t, never) = chan::bounded::<u8>(0);
        corun::select! {
            recv(never) -> _ => Ok("never"),
            recv(ctx.done()) -> _ => Err(ctx.err().unwrap().to_string()),
        }
    });
    let ctx = g.context().clone();
    g.spawn(|_| {
        corun::sleep(SHORT);
        Err("the first failure".to_string())
    });
    let t = Instant::now();
    assert_eq!(g.join(), Err("the first failure".to_string()));
    assert!(t.elapsed() < SOON);
    assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    drop(held);
}

#[test]
fn join_all_shows_every_member_stopped_by_the_cancel() {
    let mut g = Group::new();
    for _ in 0..3 {
        g.spawn(|ctx| corun::sleep_ctx(FOREVER, &ctx));
    }
    g.spawn(|_| Err(ContextError::DeadlineExceeded)); // any error will do
    let all = g.join_all();
    assert_eq!(
        all,
        [
            Err(ContextError::Cancelled),
            Err(ContextError::Cancelled),
            Err(ContextError::Cancelled),
            Err(ContextError::DeadlineExceeded),
        ]
    );
}

#[test]
fn the_first_error_in_time_wins() {
    let mut g: Group<(), &str> = Group::new();
    g.spawn(|ctx| {
        // Fails second: after the later member's failure cancelled it.
        let _ = corun::sleep_ctx(FOREVER, &ctx);
        Err("second")
    });
    g.spawn(|_| Err("first"));
    assert_eq!(g.join(), Err("first"));
}

#[test]
fn a_panicking_member_cancels_the_group_and_join_resumes_the_panic() {
    let mut g: Group<(), ContextError> = Group::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    g.spawn(move |ctx| {
        let r = corun::sleep_ctx(FOREVER, &ctx);
        s.fetch_add(1, Ordering::SeqCst);
        r
    });
    g.spawn(|_| {
        corun::sleep(SHORT);
        panic!("member panicked")
    });
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.join()))
        .expect_err("join resumes the member's panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"member panicked"));
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        1,
        "the other member ended first"
    );
}

struct Count(Arc<AtomicUsize>);
impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_group_cancels_and_joins_its_members() {
    let ended = Arc::new(AtomicUsize::new(0));
    let mut g: Group<(), ()> = Group::new();
    let ctx = g.context().clone();
    for i in 0..6 {
        let c = Count(ended.clone());
        g.spawn(move |ctx| {
            let _c = c;
            match i % 3 {
                0 => corun::sleep(FOREVER), // ignores the context: unwound by cancel
                1 => drop(corun::sleep_ctx(FOREVER, &ctx)),
                _ => loop {
                    corun::park(); // nothing wakes it but the cancellation
                },
            }
            corun::sleep(SHORT); // still a member after its context wait ended
            Ok(())
        });
    }
    corun::sleep(SHORT);
    let t = Instant::now();
    drop(g);
    assert_eq!(
        ended.load(Ordering::SeqCst),
        6,
        "every member ended before drop returned"
    );
    assert!(t.elapsed() < SOON);
    assert_eq!(ctx.err(), Some(ContextError::Cancelled));
}

#[test]
fn dropping_a_group_in_a_coroutine() {
    let ended = Arc::new(AtomicUsize::new(0));
    let e = ended.clone();
    corun::spawn(move || {
        let mut g: Group<(), ()> = Group::new();
        for _ in 0..4 {
            let c = Count(e.clone());
            g.spawn(move |_| {
                let _c = c;
                corun::sleep(FOREVER);
                Ok(())
            });
        }
        corun::yield_now();
    })
    .join()
    .unwrap();
    assert_eq!(ended.load(Ordering::SeqCst), 4);
}

#[test]
fn a_cancelled_parent_cancels_the_group() {
    let (parent, cancel) = Context::background().with_timeout(FOREVER);
    let mut g = Group::with_context(&parent);
    for _ in 0..3 {
        g.spawn(|ctx| corun::sleep_ctx(FOREVER, &ctx));
    }
    corun::sleep(SHORT);
    cancel.cancel();
    assert_eq!(g.join(), Err(ContextError::Cancelled));
}

#[test]
fn a_group_inside_a_member() {
    let mut outer: Group<u32, String> = Group::new();
    outer.spawn(|ctx| {
        let mut inner = Group::with_context(&ctx);
        for i in 1..=4 {
            inner.spawn(move |_| Ok::<u32, String>(i));
        }
        Ok(inner.join()?.into_iter().sum())
    });
    assert_eq!(outer.join(), Ok(vec![10]));
}

#[test]
fn join_cancels_the_context_afterwards() {
    let mut g: Group<(), ()> = Group::new();
    g.spawn(|_| Ok(()));
    let ctx = g.context().clone();
    assert_eq!(ctx.err(), None);
    assert_eq!(g.join(), Ok(vec![()]));
    assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    assert!(Group::<(), ()>::new().join().unwrap().is_empty());
}
