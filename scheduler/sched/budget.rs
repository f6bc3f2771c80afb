//! The cooperative budget (tokio's coop): operations that may wait but complete at
//! once still count, so a loop of ready channel or lock operations cannot hold its
//! worker forever.
//!
//! Each switch into a coroutine gives it [`BUDGET`] operations. Channel sends,
//! receives and selects, and `sync` lock acquisitions call [`consume`] first; once
//! the budget is spent, or earlier when the worker should switch (a coroutine woken
//! by another thread waits in its inbox, or sysmon poked it: a timer is due, or this
//! coroutine has run 10 ms), the next such call yields (the other runnable coroutines of
//! the worker run, the budget refills when the coroutine runs again) and is counted
//! in the metrics (`budget_yields`). A wait that parks refills it too, since the
//! coroutine is switched in again afterwards. A spawn and a `join` are [`checkpoint`]s: they yield
//! only when the worker should switch, and count nothing. `try_` operations never count: they
//! never wait. The budget lives in the worker, not the coroutine: it is the
//! coroutine's only while it runs.

/// Operations a coroutine may complete without yielding, per turn on its worker.
pub(super) const BUDGET: u32 = 128;

/// Counts one operation against the running coroutine's budget, yielding first if
/// it is spent. Does nothing outside a coroutine. Not a cancellation point.
#[inline]
pub(crate) fn consume() {
    step(true);
}

/// Yields if the worker should switch now (a woken coroutine waits, or sysmon asked),
/// without counting an operation: a spawn, which would otherwise make a loop of
/// spawns yield every `BUDGET` for nothing.
#[inline]
pub(crate) fn checkpoint() {
    // A spawn is not among a migratable coroutine's blocking points (its `unsafe`
    // contract lists them): it must not move there, so it never yields there.
    #[cfg(not(loom))]
    if super::context::with_current(|t| t.header.migratable) == Some(true) {
        return;
    }
    step(false);
}

#[inline]
fn step(count: bool) {
    #[cfg(not(loom))]
    {
        use super::context;
        use super::counters::Counters;
        use super::task::Request;
        let spent = context::with_worker(|w| {
            if w.current.get().is_none() {
                return false;
            }
            match w.budget.get() {
                0 if count => {
                    Counters::bump(&w.counters().budget_yields, 1);
                    true
                }
                // A woken coroutine waits, a timer is due, or this one has run long.
                _ if w.remote().should_yield() => {
                    Counters::bump(&w.counters().budget_yields, 1);
                    true
                }
                b => {
                    if count {
                        w.budget.set(b - 1);
                    }
                    false
                }
            }
        });
        // Not while `await_future` polls inside tokio's context (`park::NoSwitch`):
        // the operation completes without waiting, so it need not yield.
        if spent == Some(true) && super::park::may_switch() {
            context::with_current(|t| {
                // SAFETY: `current` is set, so we are that coroutine, running on its
                // own stack. The worker refills the budget when it resumes us.
                unsafe { t.header.suspend(Request::Yield) }
            });
        }
    }
}
