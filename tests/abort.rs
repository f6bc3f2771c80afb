//! Dropping a runtime whose coroutines cannot be unwound (`panic = "abort"`), then
//! using what outlives it: handles, channels, `Coroutine`s. `.ci/sanitize` builds
//! this test with `-Cpanic=abort` and AddressSanitizer; the plain suite runs it with
//! unwinding, where the same program must hold too.
//!
//! No libtest: it cannot run `#[test]`s under `panic = "abort"` on stable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static LOCALS_DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Counted;
impl Drop for Counted {
    fn drop(&mut self) {
        LOCALS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}
corun::coroutine_local!(static VALUE: Counted = Counted);

fn main() {
    // A hang here is a failure, not a stuck CI run.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("abort: the runtime's drop hung");
        std::process::exit(1);
    });
    let mode = if cfg!(panic = "abort") {
        "abort"
    } else {
        "unwind"
    };
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = corun::chan::bounded::<()>(0);
    let mut handles = vec![
        // Parked with a value in a coroutine-local.
        rt.spawn(|| loop {
            VALUE.with(|_| ());
            corun::park();
        }),
        // Parked on a channel whose sender outlives the runtime.
        rt.spawn(move || {
            let _ = rx.recv();
        }),
        // Runnable when the runtime goes.
        rt.spawn(|| loop {
            corun::yield_now();
        }),
    ];
    // Coroutines no worker owns, parked and runnable.
    for park in [true, false] {
        // SAFETY: the closure holds no thread-local reference nor `!Send` value.
        let b = unsafe { corun::Builder::new().migratable() };
        handles.push(
            b.spawn_on(rt.handle(), move || loop {
                if park {
                    corun::park();
                } else {
                    corun::yield_now();
                }
            })
            .unwrap(),
        );
    }
    let parked = handles[0].coroutine();
    let migratable = handles[3].coroutine();
    while rt.metrics().live != handles.len() || LOCALS_DROPPED.load(Ordering::SeqCst) != 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    for h in handles {
        let err = h
            .join()
            .expect_err("cancelled or leaked by the runtime's drop");
        assert!(err.downcast_ref::<corun::Cancelled>().is_some());
    }
    // Wakers that outlive the runtime: nothing of it may be reached.
    parked.unpark();
    migratable.unpark();
    // Unwinding, the receiver is gone; leaked, it still waits and is handed the
    // value (its wake-up does nothing).
    let sent = tx.try_send(());
    assert_eq!(sent.is_ok(), cfg!(panic = "abort"), "{sent:?}");
    let dropped = LOCALS_DROPPED.load(Ordering::SeqCst);
    if cfg!(panic = "abort") {
        // Leaked with the coroutine, never dropped on this thread.
        assert_eq!(dropped, 0, "a leaked coroutine's local was dropped");
    } else {
        assert_eq!(
            dropped, 1,
            "the cancelled coroutine's local was not dropped"
        );
    }
    println!("abort ({mode}): 1 passed, 0 failed");
}
