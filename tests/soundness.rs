//! Soundness at the edges: user code in destructors, generators holding borrows,
//! values that outlive their runtime (`docs/safety.md`). Each test reached undefined
//! behaviour before its fix, seen by AddressSanitizer in `.ci/sanitize`; most also
//! fail without it (a wrong value, a hang or a missing message).
//!
//! The tests that watch a process abort run an `#[ignore]`d helper test in a child
//! process (`support::ChildTest`).

use corun::Generator;
use std::cell::{Cell, RefCell};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::{is_child, ChildTest};

mod support;

/// Runs helper `name` in a child process, killed if it hangs (as the unfixed
/// runtime could). Under ASan the child also checks for stack-use-after-return,
/// which the suite itself runs without (see .ci/sanitize).
fn run_child(name: &str) -> Output {
    let mut child = ChildTest::new(name).limit(Duration::from_secs(60));
    if support::under_asan() {
        let opts = std::env::var("ASAN_OPTIONS").unwrap_or_default();
        child = child.env(
            "ASAN_OPTIONS",
            format!("{opts}:detect_stack_use_after_return=1:detect_leaks=0"),
        );
    }
    child.output()
}

/// Asserts that the child aborted with `message` and no sanitizer report.
fn assert_aborted_with(out: &Output, message: &str) {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("AddressSanitizer"),
        "the sanitizer saw a memory error:\n{stderr}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "expected an abort; status {:?}:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(message),
        "expected {message:?} in:\n{stderr}"
    );
}

fn wait_finished<T>(h: &corun::JoinHandle<T>) {
    assert!(
        support::wait_until(Duration::from_secs(20), || h.is_finished()),
        "the coroutine never finished (its worker died?)"
    );
}

// ---- 1: a coroutine-local destructor cannot re-create the locals ----

thread_local!(static WORKER_TL: RefCell<Vec<u64>> = RefCell::new(Vec::with_capacity(64)));

/// Uses the worker thread-local it borrowed when its generator is unwound.
struct Touch<'a>(&'a RefCell<Vec<u64>>);
impl Drop for Touch<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().push(2);
    }
}

/// A started generator holding a borrow of the worker's thread-local across a yield:
/// unwinding it on any other thread, or after that thread's exit, is a use after free.
fn generator_borrowing_the_worker() -> RefCell<Option<Generator<(), (), ()>>> {
    let mut g = Generator::new(|co| {
        WORKER_TL.with(|v| {
            let _t = Touch(v);
            co.yield_(());
        });
    });
    g.resume();
    RefCell::new(Some(g))
}

struct TouchesOtherKey;
impl Drop for TouchesOtherKey {
    fn drop(&mut self) {
        SECOND.with(|_| ());
    }
}

corun::coroutine_local!(static FIRST: TouchesOtherKey = TouchesOtherKey);
corun::coroutine_local!(static SECOND: RefCell<Option<Generator<(), (), ()>>> =
    generator_borrowing_the_worker());

#[test]
fn a_local_destructor_cannot_remake_the_locals() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    let h = rt.spawn(|| FIRST.with(|_| ()));
    wait_finished(&h);
    // The worker thread exits: a map made after the teardown would be dropped by
    // the joiner below, unwinding the generator over the dead thread's local.
    drop(rt);
    let err = h
        .join()
        .expect_err("the `with` in a local's destructor panics");
    let msg = err.downcast_ref::<String>().map(String::as_str);
    assert_eq!(
        msg,
        Some("cannot access a coroutine-local value during or after destruction")
    );
}

static TRY_WITH_AFTER: AtomicU64 = AtomicU64::new(0);

struct TriesOtherKey;
impl Drop for TriesOtherKey {
    fn drop(&mut self) {
        let r = COUNT.try_with(|c| c.get());
        TRY_WITH_AFTER.store(if r.is_err() { 1 } else { 2 }, Ordering::SeqCst);
    }
}
corun::coroutine_local!(static TRIES: TriesOtherKey = TriesOtherKey);
corun::coroutine_local!(static COUNT: Cell<u32> = Cell::new(0));

#[test]
fn try_with_during_the_teardown_is_an_error() {
    corun::spawn(|| {
        TRIES.with(|_| ());
        COUNT.with(|c| c.set(3));
    })
    .join()
    .unwrap();
    assert_eq!(
        TRY_WITH_AFTER.load(Ordering::SeqCst),
        1,
        "try_with gave a value"
    );
}

// ---- 2: a generator's coroutine-locals live as long as the generator ----

corun::coroutine_local!(static K: Vec<u64> = vec![7; 16]);
thread_local!(static PARKED_GEN: RefCell<Option<Generator<u32, (), u64>>> =
    const { RefCell::new(None) });

#[test]
fn a_generator_borrow_of_a_local_outlives_its_resumer() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    rt.spawn(|| {
        COUNT.with(|c| c.set(5));
        let mut g = Generator::new(|co| {
            // The generator's own value, not its resumer's.
            let count = COUNT.with(|c| c.get());
            K.with(|v| {
                co.yield_(count);
                v[0] // read after the first resumer has ended
            })
        });
        assert_eq!(g.resume(), Some(0), "the generator saw its resumer's local");
        assert_eq!(COUNT.with(|c| c.get()), 5);
        PARKED_GEN.with(|s| *s.borrow_mut() = Some(g));
        // Ends here: its locals are freed.
    })
    .join()
    .unwrap();
    let v = rt
        .spawn(|| {
            let mut g = PARKED_GEN
                .with(|s| s.borrow_mut().take())
                .expect("one worker: the same thread");
            assert_eq!(g.resume(), None);
            g.into_return()
        })
        .join()
        .unwrap();
    assert_eq!(v, Some(7));
}

// ---- 3: user destructors on the scheduler's stack ----

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop");
    }
}

struct SpawnOnDrop;
impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let _ = corun::spawn(|| 1);
    }
}
thread_local!(static SPAWNS_AT_EXIT: SpawnOnDrop = const { SpawnOnDrop });

#[test]
#[ignore = "helper: run in a child process"]
fn child_detached_result_panics_on_drop() {
    if !is_child("child_detached_result_panics_on_drop") {
        return;
    }
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    // A worker thread-local whose destructor calls corun: it would use the worker's
    // state after its frame had unwound.
    rt.spawn(|| SPAWNS_AT_EXIT.with(|_| ())).join().unwrap();
    let parked = rt.spawn(|| loop {
        corun::park();
    });
    let c = parked.coroutine();
    drop(parked);
    drop(rt.spawn(|| PanicOnDrop));
    std::thread::sleep(Duration::from_millis(300));
    drop(rt);
    // A kept handle to a coroutine of the dead worker must not reach a freed runtime.
    c.unpark();
    println!("survived");
}

#[test]
fn a_detached_result_panicking_on_drop_aborts_like_std() {
    let out = run_child("child_detached_result_panics_on_drop");
    assert_aborted_with(&out, "panicked while being dropped");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
}

#[test]
fn an_unrun_closure_panicking_on_drop_is_the_outcome() {
    let rt = corun::Runtime::builder()
        .workers(1)
        .extra_threads(0)
        .build()
        .unwrap();
    static GO: AtomicBool = AtomicBool::new(false);
    // Keeps the only worker busy so that the next one stays unstarted.
    let blocker = rt.spawn(|| {
        while !GO.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    });
    let guard = PanicOnDrop;
    let victim = rt.spawn(move || drop(guard));
    assert!(victim.cancel());
    GO.store(true, Ordering::SeqCst);
    blocker.join().unwrap();
    wait_finished(&victim);
    let err = victim.join().expect_err("never ran");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"PanicOnDrop"));
    // The worker survived it.
    assert_eq!(rt.block_on(|| 6 * 7), 42);
}

corun::coroutine_local!(static PANICS: PanicOnDrop = PanicOnDrop);

#[test]
fn a_local_panicking_on_drop_is_the_coroutines_panic() {
    let h = corun::spawn(|| {
        PANICS.with(|_| ());
        5
    });
    wait_finished(&h);
    let err = h.join().expect_err("the local's destructor panicked");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"PanicOnDrop"));
    // The runtime goes on.
    assert_eq!(corun::spawn(|| 1).join().unwrap(), 1);
}

#[test]
#[ignore = "helper: run in a child process"]
fn child_scoped_result_panics_on_drop() {
    if !is_child("child_scoped_result_panics_on_drop") {
        return;
    }
    corun::spawn(|| {
        corun::scope(|s| {
            // Its handle is dropped unjoined: the scope drops the result.
            s.spawn(|| PanicOnDrop);
        });
    })
    .join()
    .unwrap();
    println!("survived");
}

#[test]
fn a_scoped_result_panicking_on_drop_aborts_like_std() {
    // Before: the scope's count never went down and it waited forever.
    let out = run_child("child_scoped_result_panics_on_drop");
    assert_aborted_with(&out, "scoped coroutine panicked while being dropped");
}

// ---- cancellation inside a guarded drop ----

/// Waits (a cancellation point) in its destructor.
struct SleepsOnDrop;
impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        corun::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancelled_coroutine_dropping_a_result_that_waits_is_no_fatal_panic() {
    static GO: AtomicBool = AtomicBool::new(false);
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let finished = rt.spawn(|| SleepsOnDrop);
    wait_finished(&finished);
    let dropper = rt.spawn(move || {
        while !GO.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        // The last reference: the result's destructor runs here and waits while
        // this coroutine is being cancelled.
        drop(finished);
        corun::yield_now(); // the cancellation is raised again here
        unreachable!("cancelled");
    });
    assert!(dropper.cancel());
    GO.store(true, Ordering::SeqCst);
    wait_finished(&dropper);
    let err = dropper.join().expect_err("cancelled");
    assert!(err.downcast_ref::<corun::Cancelled>().is_some());
}

// ---- a waker from outside the runtime ----

#[test]
fn a_thread_waking_a_coroutine_of_a_runtime_being_dropped() {
    // The waker queues the coroutine, which may run to its end and let the runtime
    // be dropped before the waker has woken the worker: the waker must still hold
    // the runtime's state. A race: each round gives it one chance (ASan sees a loss).
    let rounds = if support::under_asan() { 300 } else { 1000 };
    for _ in 0..rounds {
        let rt = corun::Runtime::builder()
            .workers(1)
            .extra_threads(0)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = rt.spawn(move || {
            tx.send(corun::current()).unwrap();
            corun::park();
        });
        let me = rx.recv().unwrap();
        let waker = std::thread::spawn(move || me.unpark());
        h.join().unwrap();
        drop(rt);
        waker.join().unwrap();
    }
}

// ---- an acceptor's spawn runs no user code in the middle of the scheduler ----

/// Parks when dropped.
struct ParksOnDrop;

impl Drop for ParksOnDrop {
    fn drop(&mut self) {
        corun::sleep(Duration::from_millis(3));
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

#[test]
#[ignore = "run as a child by placement_spawn_never_moves_its_caller_mid_spawn"]
fn child_placement_spawn_never_moves_its_caller() {
    if !is_child("child_placement_spawn_never_moves_its_caller") {
        return;
    }
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = corun::chan::bounded::<()>(0);
    // SAFETY: the acceptor keeps no thread-local or `!Send` value across a park.
    let builder = unsafe { corun::Builder::new().migratable() };
    let acceptor = builder
        .spawn_on(rt.handle(), move || {
            let l = corun::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            for _ in 0..100 {
                let c = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
                let _conn = l.accept().unwrap();
                c.join().unwrap();
                for _ in 0..2 {
                    let rx = rx.clone();
                    corun::spawn(move || {
                        let _ = rx.recv();
                    });
                }
                // A stack that cannot be mapped: the coroutine is abandoned when it
                // would start, dropping its closure, which parks.
                let d = ParksOnDrop;
                let before = thread_name();
                let h = corun::Builder::new()
                    .stack_size(1 << 62)
                    .spawn(move || drop(d));
                assert_eq!(before, thread_name(), "spawn returned on another thread");
                if let Ok(h) = h {
                    assert!(h.join().is_err(), "a stack of 2^62 bytes was mapped");
                }
            }
        })
        .unwrap();
    acceptor.join().unwrap();
    drop(tx);
    drop(rt);
    support::child_done();
}

#[test]
fn placement_spawn_never_moves_its_caller_mid_spawn() {
    let out = run_child("child_placement_spawn_never_moves_its_caller");
    support::assert_child_done(&out);
}
