//! Where a new coroutine starts. A started coroutine never changes thread, so the
//! worker it starts on is its worker for life: placement at start is all the
//! balance a server gets, and all the locality a chain of coroutines gets.
//!
//! | spawned by | starts | why |
//! |---|---|---|
//! | a coroutine that has just accepted a connection | the least loaded worker (fewest started coroutines alive, counting those placed there but not started), the spawner's own on a tie, never an M stuck in user code without its P | a connection lives long and talks to its peer, not its spawner: only an even split keeps the workers evenly busy for good |
//! | any other coroutine | the spawner's `runnext`, stealable until it starts | joined at once (fib, skynet) or talking to its spawner (ping-pong, pipelines): near its parent, and an idle worker still steals it if the parent's worker stays busy |
//! | a thread outside the runtime | the injector | any worker |
//!
//! "Has just accepted" is the coroutine that last returned from an `accept` on its
//! worker (`note_accept`), so an acceptor loop (`accept`, then spawn) spreads and
//! nothing else changes. The load read is a relaxed snapshot of every worker (a
//! handful of loads, once per connection): a stale count misplaces one connection
//! at worst, and the next spawn sees it.

use super::context;
use super::shared::Shared;

/// Called by a listener's `accept` when it returns a connection: what the calling
/// coroutine spawns next starts on the least loaded worker.
pub(crate) fn note_accept() {
    let Some(id) = context::with_current(|t| t.header.id) else {
        return;
    };
    context::with_worker(|w| w.note_accept(id));
}

/// The worker a connection coroutine spawned on worker `me` should start on, if
/// not `me`.
pub(super) fn least_loaded(shared: &Shared, me: usize) -> Option<usize> {
    let load = |i: usize| shared.remotes[i].load();
    let mut best = me;
    // A dedicated thread (past the workers) keeps none: any worker is better.
    let mut best_load = if me < shared.workers {
        load(me)
    } else {
        usize::MAX
    };
    for i in 0..shared.workers {
        // An M whose P sysmon took (stuck in a hog or a blocking call) would leave
        // the connection waiting, however light its load.
        if i != me && !shared.remotes[i].claim.was_revoked() {
            let l = load(i);
            if l < best_load {
                best = i;
                best_load = l;
            }
        }
    }
    (best != me).then_some(best)
}
