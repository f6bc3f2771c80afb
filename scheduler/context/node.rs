//! A context's node: its place in the tree, what cancelling does, and the timer
//! behind `done()`.

use super::ContextError;
use crate::chan::{Receiver, Sender};
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Mutex;
use crate::sched::interrupt::{Interrupt, Slab, Until};
use crate::sched::park;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

/// One derived context, shared by its clones and held by its children.
pub(super) struct Node {
    /// Kept alive by its children; `None` under the background context.
    pub(super) parent: Option<Arc<Node>>,
    /// This context's or an ancestor's, whichever is earlier.
    pub(super) deadline: Option<Instant>,
    /// Fired with a [`ContextError`] code when the context is done; shared with the
    /// deadline timer of `done()`.
    pub(super) intr: Arc<Interrupt>,
    pub(super) state: Mutex<State>,
    pub(super) done: OnceLock<Receiver<()>>,
    /// The deadline timer of `done()` was started.
    pub(super) timer: AtomicBool,
}

/// What changes when the tree does, under the node's lock.
pub(super) struct State {
    pub(super) children: Slab<Weak<Node>>,
    /// This node's key in its parent's `children`, while it is there.
    pub(super) in_parent: Option<usize>,
    /// Dropped (closing `done()`'s channel) when the context is done.
    pub(super) done_tx: Option<Sender<()>>,
}

/// The coroutine that closes `done()` at the deadline: it waits on the node's
/// interrupt with that deadline, holding only a weak reference to the node, so it
/// ends early (woken by `Node::drop`) when the context is cancelled or dropped.
pub(super) fn start_timer(n: &Arc<Node>, deadline: Instant) {
    let node = Arc::downgrade(n);
    let intr = n.intr.clone();
    let spawned = crate::Builder::new()
        .name("corun::Context deadline")
        .spawn(move || {
            let until = Until {
                deadline: Some(deadline),
                interrupt: Some(&intr),
            };
            let watch = until.watch();
            while !until.passed() {
                park::park(park::Reason::Sleep, Some(deadline), park::Cancel::Point);
            }
            drop(watch);
            if let Some(n) = node.upgrade() {
                n.cancel(ContextError::DEADLINE);
            }
        });
    // A runtime shutting down cannot run it: `err()` and the context forms still
    // see the deadline, only `done()` stays open.
    drop(spawned);
}

impl Node {
    /// Marks this node and its descendants done with `code` (first cause wins),
    /// closes their `done()` channels and wakes their waiters.
    pub(super) fn cancel(&self, code: usize) {
        let mut next = self.cancel_one(code);
        // A work list, not recursion: a deep tree must not overflow the stack.
        while let Some(w) = next.pop() {
            if let Some(child) = w.upgrade() {
                next.extend(child.cancel_one(code));
            }
        }
    }

    /// Cancels this node alone; returns its children.
    fn cancel_one(&self, code: usize) -> Vec<Weak<Node>> {
        let (children, done_tx, in_parent) = {
            let mut st = self.state.lock();
            if !self.intr.fire(code) {
                return Vec::new();
            }
            (
                st.children.take_all(),
                st.done_tx.take(),
                st.in_parent.take(),
            )
        };
        drop(done_tx); // closes the channel: its receivers wake
        if let (Some(key), Some(p)) = (in_parent, &self.parent) {
            p.remove_child(key);
        }
        children
    }

    fn remove_child(&self, key: usize) {
        let w = self.state.lock().children.remove(key);
        drop(w);
    }
}

impl Node {
    /// What a node gives back when it goes: its place in its parent, its timer.
    fn release(&mut self) {
        let in_parent = self.state.lock().in_parent.take();
        if let (Some(key), Some(p)) = (in_parent, &self.parent) {
            p.remove_child(key);
        }
        if self.timer.load(Ordering::Acquire) {
            // Ends the deadline timer now rather than at the deadline.
            self.intr.fire(ContextError::CANCELLED);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.release();
        // Ancestors that go with it are dropped in a loop, not by recursion: a
        // context derived again and again must not overflow the stack.
        let mut parent = self.parent.take();
        while let Some(p) = parent {
            parent = Arc::into_inner(p).and_then(|mut n| {
                n.release();
                n.parent.take()
            });
        }
    }
}
