//! [`Group`]: coroutines spawned, joined and cancelled together (Go's `errgroup`).

use super::{CancelHandle, Context};
use crate::chan::{self, Receiver, Sender};
use crate::JoinHandle;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const NONE: usize = usize::MAX;

/// A group of coroutines that share a [`Context`], cancelled as soon as one of them
/// fails: Go's `errgroup.WithContext`.
///
/// Each member is a `'static` closure given the group's context and returning
/// `Result<T, E>`; [`join`](Group::join) waits for all of them and returns their
/// values in spawn order, or the first error (the first in time, as errgroup).
/// When a member returns `Err` or panics, the group's context is cancelled, so
/// members waiting with it (the context forms, [`Context::done`]) stop with its
/// error. Dropping a group that was not joined cancels the context and the members
/// (their coroutines unwind at their next cancellation point, see
/// [`Cancelled`](crate::Cancelled)) and waits for them: no member outlives its group.
///
/// Members cannot borrow from the caller: a group that lent its stack to members
/// could be leaked with `mem::forget` and its members would outlive what they
/// borrow. Use [`scope`](crate::scope) to borrow.
///
/// ```
/// use corun::{chan, Context, Group};
/// use std::time::Duration;
///
/// let (_tx, rx) = chan::bounded::<u32>(0); // nothing ever arrives
/// let mut g = Group::new();
/// g.spawn(move |ctx: Context| {
///     // Waits until a sibling fails, then reports why it stopped.
///     rx.recv_ctx(&ctx).map_err(|e| e.to_string())
/// });
/// g.spawn(|_ctx: Context| {
///     corun::sleep(Duration::from_millis(5));
///     Err("disk full".to_string())
/// });
/// assert_eq!(g.join(), Err("disk full".to_string()));
/// ```
pub struct Group<T, E> {
    ctx: Context,
    cancel: CancelHandle,
    /// `None` once joined (or being joined).
    members: Vec<Option<JoinHandle<Result<T, E>>>>,
    /// Index of the first member to fail, `NONE` while none has.
    first: Arc<AtomicUsize>,
    /// Each member holds a clone until its closure is gone; `done_rx` sees the
    /// channel closed once every member (and the group) dropped theirs.
    done_tx: Option<Sender<()>>,
    done_rx: Receiver<()>,
}

impl<T: Send + 'static, E: Send + 'static> Group<T, E> {
    /// A group whose context derives from [`Context::background`].
    pub fn new() -> Group<T, E> {
        Group::with_context(&Context::background())
    }

    /// A group whose context derives from `parent`: cancelling `parent` cancels
    /// the group's members too.
    pub fn with_context(parent: &Context) -> Group<T, E> {
        let (ctx, cancel) = parent.with_cancel();
        let (done_tx, done_rx) = chan::bounded(0);
        Group {
            ctx,
            cancel,
            members: Vec::new(),
            first: Arc::new(AtomicUsize::new(NONE)),
            done_tx: Some(done_tx),
            done_rx,
        }
    }

    /// The group's context: cancelled when a member fails, when the group is
    /// joined or dropped, or when the parent is.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// How many members were spawned.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member was spawned.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Spawns `f` as a member (a coroutine, as [`spawn`](crate::spawn)), passing
    /// it a clone of the group's context.
    ///
    /// # Panics
    /// If the runtime is shutting down, as [`spawn`](crate::spawn).
    pub fn spawn<F>(&mut self, f: F)
    where
        F: FnOnce(Context) -> Result<T, E> + Send + 'static,
    {
        let failure = Failure {
            cancel: self.cancel.clone(),
            first: self.first.clone(),
            index: self.members.len(),
        };
        let ctx = self.ctx.clone();
        let done = self.done_tx.clone();
        let h = crate::spawn(move || {
            let _done = done;
            // Records a failure if `f` unwinds (a panic, a cancellation).
            let mut on_unwind = OnUnwind(Some(failure));
            let r = f(ctx);
            let failure = on_unwind.0.take().expect("set above");
            if r.is_err() {
                failure.record();
            }
            r
        });
        self.members.push(Some(h));
    }

    /// Cancels the group's context (members keep running until they notice).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for every member; returns their values in spawn order, or the first
    /// error a member returned (the others' errors are dropped). Then cancels the
    /// group's context, as errgroup's `Wait` does.
    ///
    /// # Panics
    /// If a member panicked (or was cancelled by a runtime shutting down), `join`
    /// resumes the first such panic in spawn order, after every member ended.
    pub fn join(self) -> Result<Vec<T>, E> {
        let first = self.first.clone();
        let mut results = self.join_all();
        match first.load(Ordering::Acquire) {
            NONE => Ok(results.into_iter().flatten().collect()),
            i => match results.swap_remove(i) {
                Err(e) => Err(e),
                Ok(_) => unreachable!("the first failure was an error"),
            },
        }
    }

    /// Waits for every member and returns each one's result, in spawn order.
    ///
    /// # Panics
    /// As [`join`](Self::join).
    pub fn join_all(mut self) -> Vec<Result<T, E>> {
        self.wait_members();
        let mut panic = None;
        let mut results = Vec::with_capacity(self.members.len());
        for slot in &mut self.members {
            let h = slot.take().expect("joined once");
            match h.join() {
                Ok(r) => results.push(Some(r)),
                Err(p) => {
                    panic.get_or_insert(p);
                    results.push(None);
                }
            }
        }
        self.cancel.cancel();
        if let Some(p) = panic {
            std::panic::resume_unwind(p);
        }
        results.into_iter().flatten().collect()
    }
}

impl<T, E> Group<T, E> {
    /// Waits until every member's closure is gone (returned, unwound, or dropped
    /// unrun). A cancellation point: if the caller unwinds here, `Drop` cancels
    /// the members and waits for them.
    fn wait_members(&mut self) {
        self.done_tx = None;
        let _ = self.done_rx.recv();
    }
}

impl<T: Send + 'static, E: Send + 'static> Default for Group<T, E> {
    fn default() -> Self {
        Group::new()
    }
}

impl<T, E> Drop for Group<T, E> {
    fn drop(&mut self) {
        self.cancel.cancel();
        if self.members.iter().all(Option::is_none) {
            return;
        }
        for h in self.members.iter().flatten() {
            h.cancel();
        }
        self.wait_members();
        for h in self.members.iter_mut().filter_map(Option::take) {
            let _ = h.join();
        }
    }
}

impl<T, E> fmt::Debug for Group<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("members", &self.members.len())
            .field("context", &self.ctx)
            .finish()
    }
}

/// How a member reports that it failed: first come, first recorded; the group's
/// context is cancelled.
struct Failure {
    cancel: CancelHandle,
    first: Arc<AtomicUsize>,
    index: usize,
}

impl Failure {
    fn record(self) {
        let _ = self
            .first
            .compare_exchange(NONE, self.index, Ordering::AcqRel, Ordering::Acquire);
        self.cancel.cancel();
    }
}

struct OnUnwind(Option<Failure>);

impl Drop for OnUnwind {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.record();
        }
    }
}
