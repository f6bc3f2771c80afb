//! Scoped coroutines: coroutines that borrow from the caller's stack, all joined
//! before [`scope`] returns, as `std::thread::scope`.
//!
//! Soundness rests on one count: `running` goes up at spawn and down only when the
//! child's result packet is dropped, which is after the closure (and everything it
//! borrowed) is gone and after its result was either taken or dropped. `scope`
//! returns only once the count is zero.

use super::join::JoinHandle;
use super::spawn::{submit, Builder};
use crate::sched::park::{self, Waiter};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

struct ScopeData {
    running: AtomicUsize,
    a_child_panicked: AtomicBool,
    owner: Waiter,
}

impl ScopeData {
    fn decrement(&self) {
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            self.owner.unpark();
        }
    }
}

/// A scope to spawn coroutines that borrow from outside it; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    rt: Option<crate::Handle>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// The result of one scoped coroutine: dropping it ends the child's share of the scope.
struct Packet<'scope, T> {
    scope: Arc<ScopeData>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    _marker: PhantomData<&'scope ()>,
}

// SAFETY: `result` is written by the child before its coroutine finishes and read by
// the handle after `join` observed that (acquire); never both at once.
unsafe impl<T: Send> Sync for Packet<'_, T> {}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.result.get_mut() {
            // A cancelled child was asked to stop: that is no failure of the scope.
            if e.downcast_ref::<crate::Cancelled>().is_none() {
                self.scope.a_child_panicked.store(true, Ordering::Relaxed);
            }
        }
        // Drop the result before the count goes down: it may borrow from 'env. It is
        // a user value: if its destructor panics, the count could never go down and
        // the scope would wait forever, so abort instead, as `std::thread::scope` does.
        let result = self.result.get_mut().take();
        crate::sched::task::drop_guarded(
            move || drop(result),
            || "the result of a scoped coroutine".into(),
        );
        self.scope.decrement();
    }
}

/// A handle to join one scoped coroutine.
pub struct ScopedJoinHandle<'scope, T> {
    handle: JoinHandle<()>,
    packet: Arc<Packet<'scope, T>>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine and returns its result (`Err` if it panicked).
    pub fn join(self) -> thread::Result<T> {
        let r = self.handle.join();
        // SAFETY: the coroutine finished (join returned), so its write to `result`
        // happened before and nobody else touches it now.
        let out = unsafe { (*self.packet.result.get()).take() };
        match (r, out) {
            (_, Some(res)) => res,
            (Err(e), None) => Err(e),
            (Ok(()), None) => unreachable!("a scoped coroutine ended without a result"),
        }
    }

    /// True once the coroutine has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Asks the coroutine to stop, as [`JoinHandle::cancel`] does; its `join` then
    /// gives a [`crate::Cancelled`] payload. Unlike a panic, a cancelled coroutine
    /// that is not joined does not make the scope panic.
    ///
    /// ```
    /// corun::scope(|s| {
    ///     let h = s.spawn(|| loop {
    ///         corun::park();
    ///     });
    ///     h.cancel();
    ///     let err = h.join().unwrap_err();
    ///     assert!(err.downcast_ref::<corun::Cancelled>().is_some());
    /// });
    /// ```
    pub fn cancel(&self) -> bool {
        self.handle.cancel()
    }
}

/// Runs `f` with a [`Scope`] whose coroutines may borrow non-`'static` data; returns
/// once all of them have ended. If any of them panicked (a cancelled one does not
/// count) and was not joined, `scope` panics after they all ended.
///
/// ```
/// let mut counts = [0u32; 4];
/// let text = "corun";
/// corun::scope(|s| {
///     for (i, c) in counts.iter_mut().enumerate() {
///         s.spawn(move || *c = (text.len() * i) as u32);
///     }
/// });
/// assert_eq!(counts, [0, 5, 10, 15]);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_child_panicked: AtomicBool::new(false),
            owner: Waiter::current(),
        }),
        rt: None,
        _scope: PhantomData,
        _env: PhantomData,
    };
    let r = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Not a cancellation point: the children borrow from this stack, so it must not
    // unwind before they are gone (they are cancelled too, and end soon).
    while scope.data.running.load(Ordering::Acquire) != 0 {
        park::park(park::Reason::Scope, None, park::Cancel::Ignore);
    }
    crate::sched::context::with_current(|t| crate::sched::cancel::checkpoint(&t.header));
    match r {
        Err(e) => resume_unwind(e),
        Ok(_) if scope.data.a_child_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped coroutine panicked")
        }
        Ok(v) => v,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a coroutine that may borrow anything that outlives the scope.
    ///
    /// # Panics
    /// If the runtime is shutting down.
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match self.spawn_with(Builder::new(), f) {
            Ok(h) => h,
            Err(e) => panic!("corun::Scope::spawn failed: {e}"),
        }
    }

    /// Spawns with a [`Builder`]'s settings.
    pub fn spawn_with<F, T>(
        &'scope self,
        b: Builder,
        f: F,
    ) -> std::io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet {
            scope: self.data.clone(),
            result: UnsafeCell::new(None),
            _marker: PhantomData,
        });
        // Dropped unrun (cancelled, runtime dropped), the closure must go before the
        // packet, whose drop lets the scope end: fields drop in declaration order.
        struct Body<F, P> {
            f: F,
            packet: P,
        }
        let body = Body {
            f,
            packet: packet.clone(),
        };
        let body = move || {
            // Names `body` whole, so the closure captures the struct, not its fields.
            let body = body;
            let Body { f, packet } = body;
            let r = catch_unwind(AssertUnwindSafe(f));
            // SAFETY: only this coroutine writes `result`, before it finishes.
            unsafe { *packet.result.get() = Some(r) };
            drop(packet);
        };
        let rt = match &self.rt {
            Some(h) => h.shared.clone(),
            None => crate::runtime::handle::current_or_default().shared,
        };
        self.data.running.fetch_add(1, Ordering::Relaxed);
        let dedicated = b.is_dedicated();
        let g = match b.make(&rt, body) {
            Ok(g) => g,
            Err(e) => {
                // `body` (and its packet) was dropped inside `make`; nothing to undo.
                return Err(e);
            }
        };
        if let Err(e) = submit(&rt, g.clone(), dedicated) {
            // The task was refused and will never run: dropping it drops `body`,
            // whose packet lowers the count.
            drop(g);
            return Err(e);
        }
        Ok(ScopedJoinHandle {
            handle: JoinHandle::new(g),
            packet,
        })
    }
}
