//! Model checks of the idle protocol with loom: the production `Idle`, `Sleeper` and
//! `Inject`, with plain tokens for coroutines. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib idle::loom_tests`.
//! A lost wake-up leaves a worker parked forever, which loom reports as a deadlock.

use super::*;
use crate::loom::sync::Arc;
use crate::sched::inject::Inject;
use crate::sched::sleeper::Sleeper;

struct World {
    idle: Idle,
    parkers: Vec<Sleeper>,
    inject: Inject<usize>,
}

fn world(workers: usize) -> Arc<World> {
    Arc::new(World {
        idle: Idle::new(workers),
        parkers: (0..workers).map(|_| Sleeper::new()).collect(),
        inject: Inject::new(),
    })
}

/// What a pusher of portable work does (`Shared::spawn` / `notify_parked`).
fn push(w: &World, token: usize) {
    w.inject.push(token).unwrap();
    if let Some(i) = w.idle.worker_to_notify() {
        w.parkers[i].unpark(|| unreachable!("nobody polls in this model"));
    }
}

/// A worker's loop, cut down to the protocol: search, else sleep; stop after
/// taking `want` tokens.
fn worker(w: &World, me: usize, want: usize) -> usize {
    let mut got = 0;
    let mut searching = false;
    while got < want {
        if !searching && w.idle.try_start_searching() {
            searching = true;
        }
        if let Some(_t) = w.inject.pop() {
            got += 1;
            if searching {
                searching = false;
                if w.idle.found_work(|| !w.inject.is_empty()) {
                    if let Some(i) = w.idle.worker_to_notify() {
                        w.parkers[i].unpark(|| unreachable!("nobody polls in this model"));
                    }
                }
            }
            continue;
        }
        if searching {
            w.idle.stop_searching();
        }
        searching = w
            .idle
            .sleep(me, || !w.inject.is_empty(), || w.parkers[me].park(None));
    }
    got
}

#[test]
fn one_sleeper_one_push() {
    loom::model(|| {
        let w = world(2);
        let w1 = w.clone();
        let t = loom::thread::spawn(move || worker(&w1, 1, 1));
        push(&w, 1);
        assert_eq!(t.join().unwrap(), 1);
        // Everyone awake again, nobody left counted as searching.
        assert_eq!(w.idle.counts(), (2, 0));
    });
}

#[test]
fn two_sleepers_two_pushes() {
    loom::model(|| {
        let w = world(3);
        let (w1, w2) = (w.clone(), w.clone());
        let a = loom::thread::spawn(move || worker(&w1, 1, 1));
        let b = loom::thread::spawn(move || worker(&w2, 2, 1));
        push(&w, 1);
        push(&w, 2);
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 2);
    });
}

/// The poller as the parker sees it: `wait` blocks until `wake`, and a wake
/// before the wait is remembered, as an eventfd's counter is.
struct FakePoll {
    fired: crate::loom::sync::Mutex<bool>,
    cv: crate::loom::sync::Condvar,
}

impl FakePoll {
    fn new() -> FakePoll {
        FakePoll {
            fired: crate::loom::sync::Mutex::new(false),
            cv: crate::loom::sync::Condvar::new(),
        }
    }
    fn wait(&self) {
        let mut g = self.fired.lock();
        while !*g {
            self.cv.wait(&mut g);
        }
        *g = false;
    }
    fn wake(&self) {
        *self.fired.lock() = true;
        self.cv.notify_one();
    }
}

#[test]
fn a_worker_sleeping_in_the_poller_is_woken_by_a_push() {
    loom::model(|| {
        let w = world(2);
        let poll = Arc::new(FakePoll::new());
        let (w1, p1) = (w.clone(), poll.clone());
        let t = loom::thread::spawn(move || {
            let mut got = 0;
            while got < 1 {
                if w1.inject.pop().is_some() {
                    got += 1;
                    continue;
                }
                w1.idle.sleep(
                    1,
                    || !w1.inject.is_empty(),
                    || w1.parkers[1].park_polling(None, |_| p1.wait()),
                );
            }
        });
        w.inject.push(1).unwrap();
        if let Some(i) = w.idle.worker_to_notify() {
            w.parkers[i].unpark(|| poll.wake());
        }
        t.join().unwrap();
    });
}

#[test]
fn parker_token_is_not_lost_in_the_poller() {
    loom::model(|| {
        let p = Arc::new(Sleeper::new());
        let poll = Arc::new(FakePoll::new());
        let (p2, poll2) = (p.clone(), poll.clone());
        let t = loom::thread::spawn(move || p2.unpark(|| poll2.wake()));
        // Either the token is seen before sleeping, or the waker interrupts it.
        p.park_polling(None, |_| poll.wait());
        t.join().unwrap();
    });
}

#[test]
fn parker_token_is_not_lost() {
    loom::model(|| {
        let p = Arc::new(Sleeper::new());
        let p2 = p.clone();
        let t = loom::thread::spawn(move || p2.unpark(|| unreachable!("not polling")));
        p.park(None);
        t.join().unwrap();
    });
}
