//! The per-P local run queue (Go's `p.runq`).
//!
//! A fixed-capacity ring of [`LOCAL_QUEUE_CAPACITY`] slots, owned by one
//! worker (its P) through [`Local`] and stealable by every other worker
//! through [`Steal`]. The owner pushes at the tail and pops at the head
//! (FIFO); a thief takes half of the queued tasks from the head in one claim,
//! moves them into its own queue and runs one of them. When the ring is full
//! the owner moves half of it, plus the new task, to the [`Inject`]or in one
//! batch, as Go's `runqputslow` does.
//!
//! # Layout
//!
//! * `tail: AtomicU32`: next slot the owner writes. Only the owner stores it.
//! * `head: AtomicU64`: two `u32` indices packed as `steal << 32 | real`.
//!   `real` is the next task to hand out; `steal` is the first slot that a
//!   thief may still be reading. `steal == real` when no steal is in
//!   progress; a thief moves `real` forward to claim `[steal, real)` and, once
//!   it has copied those slots out, sets `steal = real` to release them.
//! * Indices are free-running `u32`s; a slot is `index & MASK`. Differences
//!   are taken with `wrapping_sub`, which is right because the capacity is a
//!   power of two no larger than 2^31, so it divides 2^32.
//!
//! # Invariants
//!
//! 1. `steal <=w real <=w tail` and `tail - steal <= CAPACITY` (`<=w` is
//!    "not ahead of", in wrapping arithmetic).
//! 2. Slots `[real, tail)` hold initialised tasks owned by the queue; slots
//!    `[steal, real)` hold tasks owned by the one thief that claimed them;
//!    every other slot is logically uninitialised. Nobody drops a slot in
//!    place: a task leaves a slot only by `ptr::read`, after its index was
//!    removed from `[real, tail)` by a successful CAS on `head`.
//! 3. Only the owner writes slots of its queue, and only slots outside
//!    `[steal, tail)` (so that no thief is reading them): push checks
//!    `tail - steal < CAPACITY`.
//! 4. At most one steal per queue is in progress (a thief that sees
//!    `steal != real` backs off), so the one who sets `steal = real` is the
//!    thief that claimed the range.
//!
//! # Orderings (and why)
//!
//! * Owner `tail.store(Release)` after writing the slot; thief
//!   `tail.load(Acquire)` before reading slots: the slot write
//!   happens-before the thief's read of it.
//! * Thief's "release the range" CAS (`steal = real`) is Release; the
//!   owner learns the new `steal` only through an Acquire read of `head`
//!   (a load, or the read half of an `AcqRel` / `Acquire` CAS), so the
//!   thief's reads of the slots happen-before the owner overwrites them one
//!   lap later. The same holds for a thief writing into its own queue (it
//!   is that queue's owner).
//! * Owner pop and overflow claim: CAS `AcqRel`, `Acquire` on failure.
//!   Being RMWs, two parties can never claim the same index (an RMW reads
//!   the latest `head`), and they continue the release sequence of a
//!   thief's Release. Their Acquire half (success and failure) is needed
//!   because the value read becomes the owner's cached `head` (below),
//!   which licenses reusing slots up to its `steal`. The Release half is
//!   not needed for data; it is free on x86 (`lock cmpxchg` either way).
//! * Thief claim: CAS `AcqRel` / `Acquire`. Only atomicity is needed (the
//!   slot contents are ordered by `tail`); the orderings keep every `head`
//!   transition a synchronisation point, at no cost on x86.
//! * Push does no read-modify-write and, on the hot path, no load of shared
//!   state: the slot write and one Release store of `tail` (plain `mov`s on
//!   x86). Pop is one CAS. See the caches below.
//!
//! # Owner-side caches
//!
//! `Local` keeps `tail` (it is `tail`'s only writer, so its copy is exact)
//! and `head`, the last value of `inner.head` it read or wrote, every one
//! read with Acquire or by an RMW (which reads the latest value). Because
//! `steal` and `real` only move forward, the cached `steal` gives a lower
//! bound on free slots, and the thief Releases that freed the slots below it
//! happen-before our Acquire that read it, so writing those slots is as safe
//! as with a fresh load (invariant 3); only when the cache shows no room
//! does the owner reload `head`. `pop` uses the cached value as the CAS's
//! expected value: if a thief moved `head`, the CAS fails, returns the
//! current value and we retry; a cached `real == tail` means empty, since the
//! true `real` lies between the two. The cache can never be a whole `u32`
//! lap stale (it is refreshed at least once per `CAP` pushes), so the CAS
//! cannot be fooled by index wrap-around (ABA).
//!
//! # Model checking
//!
//! Under `cfg(loom)` the capacity is 4 so the models reach the full/overflow
//! and wrap-around edges. The models live in `tests/loom_queue.rs` (which
//! compiles this file and `inject.rs` / `loom.rs` by `#[path]`, as the items
//! are `pub(crate)`):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom_queue
//! ```
//!
//! Each model sets the preemption bound itself (3 unless
//! `LOOM_MAX_PREEMPTIONS` overrides it); the file runs in ~10 s on 2 cores
//! (~1 min with `LOOM_MAX_PREEMPTIONS=4`; details in `tests/loom_queue.rs`).
//!
//! [`Inject`]: super::inject::Inject

use std::cell::Cell;
use std::iter;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Release},
};
use crate::loom::sync::Arc;
use crate::sched::inject::Inject;

/// Slots per local queue (Go's `len(p.runq)` is 256 too).
#[cfg(not(loom))]
pub(crate) const LOCAL_QUEUE_CAPACITY: usize = 256;
/// Slots per local queue; tiny under loom so models reach full and wrap.
#[cfg(loom)]
pub(crate) const LOCAL_QUEUE_CAPACITY: usize = 4;

const CAP: u32 = LOCAL_QUEUE_CAPACITY as u32;
const MASK: usize = LOCAL_QUEUE_CAPACITY - 1;
/// Tasks moved to the injector when the ring is full (plus the new one).
const OVERFLOW_BATCH: u32 = CAP / 2;

const _: () = assert!(
    LOCAL_QUEUE_CAPACITY.is_power_of_two() && LOCAL_QUEUE_CAPACITY >= 2,
    "slot = index & MASK needs a power of two; halving needs >= 2"
);
const _: () = assert!(
    LOCAL_QUEUE_CAPACITY <= 1 << 31,
    "wrapping u32 index arithmetic needs the capacity to divide 2^32 with room"
);

/// State shared by the owner and the thieves.
struct Inner<T> {
    /// `steal << 32 | real`, see the module docs.
    head: AtomicU64,
    /// Next slot to write; stored by the owner only.
    tail: AtomicU32,
    /// A fixed-size array, so `index & MASK` needs no bounds check.
    buffer: Box<[UnsafeCell<MaybeUninit<T>>; LOCAL_QUEUE_CAPACITY]>,
}

// SAFETY: `Inner` hands tasks (by value) from the thread that pushed them to
// the thread that pops or steals them, hence `T: Send`; it never gives out
// `&T`, so `T: Sync` is not needed. Concurrent access to the `UnsafeCell`
// slots is race-free by invariants 2-4 and the orderings in the module docs:
// a slot is accessed by one party at a time, and hand-overs are ordered by
// `tail` (Release/Acquire) and `head` (RMWs and the thief's Release).
unsafe impl<T: Send> Sync for Inner<T> {}
// SAFETY: as above; the fields are otherwise `Send` when `T: Send` (loom's
// `UnsafeCell` is not auto-`Send`, hence spelled out).
unsafe impl<T: Send> Send for Inner<T> {}

/// The owner's handle: push and pop. `Send` (it moves to its worker thread)
/// but not `Sync`: the push/pop fast paths rely on a single caller.
pub(crate) struct Local<T> {
    inner: Arc<Inner<T>>,
    /// Owner-side copy of `inner.tail` (the owner is its only writer).
    tail: u32,
    /// Last `inner.head` value this owner read or wrote, always with
    /// Acquire or stronger (see "Owner-side caches" in the module docs).
    head: u64,
    _not_sync: PhantomData<Cell<()>>,
}

/// A thief's handle: steal half, or peek at the length. `Clone + Send + Sync`.
pub(crate) struct Steal<T>(Arc<Inner<T>>);

/// Creates a local queue: the owner's end and the thieves' end.
pub(crate) fn local<T: Send>() -> (Local<T>, Steal<T>) {
    local_at(0)
}

/// [`local`] with both indices starting at `start` (tests start near
/// `u32::MAX` to exercise index wrap-around).
fn local_at<T: Send>(start: u32) -> (Local<T>, Steal<T>) {
    let buffer: Box<[_]> = (0..LOCAL_QUEUE_CAPACITY)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let Ok(buffer) = buffer.try_into() else {
        unreachable!("exactly LOCAL_QUEUE_CAPACITY slots were collected")
    };
    let inner = Arc::new(Inner {
        head: AtomicU64::new(pack(start, start)),
        tail: AtomicU32::new(start),
        buffer,
    });
    let local = Local {
        inner: inner.clone(),
        tail: start,
        head: pack(start, start),
        _not_sync: PhantomData,
    };
    (local, Steal(inner))
}

#[inline]
fn pack(steal: u32, real: u32) -> u64 {
    (u64::from(steal) << 32) | u64::from(real)
}

#[inline]
fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

impl<T> Inner<T> {
    /// Moves the task out of slot `index`.
    ///
    /// # Safety
    ///
    /// The caller must own slot `index` (invariant 2: it removed `index`
    /// from `[real, tail)` with a successful CAS, or claimed it as a thief),
    /// the slot must be initialised, and the write that initialised it must
    /// happen-before this call. The slot is logically uninitialised after.
    #[inline]
    unsafe fn take(&self, index: u32) -> T {
        self.buffer[index as usize & MASK].with(|slot| {
            // SAFETY: by the caller's contract nobody else accesses the slot
            // now, it holds an initialised `T`, and ownership of that `T`
            // moves to us (nobody reads it again before it is rewritten).
            unsafe { slot.read().assume_init() }
        })
    }

    /// Writes `task` into slot `index` (which must be free; see `put`'s
    /// callers).
    ///
    /// # Safety
    ///
    /// The caller is the owner of this queue, slot `index` is outside
    /// `[steal, tail)` for a `steal` loaded with Acquire (invariant 3), so no
    /// other thread accesses it and every earlier read of it happens-before
    /// this write.
    #[inline]
    unsafe fn put(&self, index: u32, task: MaybeUninit<T>) {
        self.buffer[index as usize & MASK].with_mut(|slot| {
            // SAFETY: exclusive access by the caller's contract; the old
            // content is logically uninitialised, so overwriting without
            // dropping is right.
            unsafe { slot.write(task) }
        });
    }
}

impl<T: Send> Local<T> {
    /// Number of tasks that [`pop`](Self::pop) could return now.
    pub(crate) fn len(&self) -> usize {
        let (_, real) = unpack(self.inner.head.load(Acquire));
        self.tail.wrapping_sub(real) as usize
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots: how many tasks [`push_back`](Self::push_back) can take
    /// now (slots a thief is still copying out of are not free yet).
    pub(super) fn remaining_slots(&self) -> usize {
        let (steal, _) = unpack(self.inner.head.load(Acquire));
        LOCAL_QUEUE_CAPACITY - self.tail.wrapping_sub(steal) as usize
    }

    /// Free slots according to the cached `head`, refreshing it (Acquire)
    /// if that shows fewer than `wanted`. A lower bound of the true count.
    #[inline]
    fn free_slots(&mut self, wanted: u32) -> u32 {
        let free = CAP - self.tail.wrapping_sub(unpack(self.head).0);
        if free >= wanted {
            return free;
        }
        // Acquire: pairs with a thief's Release of `[steal, real)`, so its
        // reads of those slots happen-before our rewrite of them.
        self.head = self.inner.head.load(Acquire);
        CAP - self.tail.wrapping_sub(unpack(self.head).0)
    }

    /// Pushes `task` at the tail. If the ring is full, moves half of it plus
    /// `task` to `inject` in one batch (oldest first, so they keep their
    /// order); if a thief is mid-steal, the ring is about to have room but
    /// we do not wait: `task` alone goes to `inject`.
    #[inline]
    pub(crate) fn push_back_or_overflow(&mut self, task: T, inject: &Inject<T>) {
        let task = if CAP - self.tail.wrapping_sub(unpack(self.head).0) != 0 {
            task
        } else {
            match self.push_full(task, inject) {
                Some(task) => task,
                None => return,
            }
        };
        let tail = self.tail;
        // SAFETY: `tail - steal < CAP` for a cached `steal` read with
        // Acquire, so slot `tail` is outside `[steal, tail)` (invariant 3) and
        // only this owner may touch it.
        unsafe { self.inner.put(tail, MaybeUninit::new(task)) };
        self.tail = tail.wrapping_add(1);
        // Release: publishes the slot write to thieves (Acquire on `tail`).
        self.inner.tail.store(self.tail, Release);
    }

    /// Slow path of a push that found the ring full by the cached `head`.
    /// Returns the task if there is room after all (the cache was stale),
    /// `None` if it went to `inject`.
    #[cold]
    #[inline(never)]
    fn push_full(&mut self, mut task: T, inject: &Inject<T>) -> Option<T> {
        loop {
            if self.free_slots(1) != 0 {
                return Some(task);
            }
            let (steal, real) = unpack(self.head);
            if steal != real {
                // A thief is copying `[steal, real)` out; room is coming but
                // we never wait on another thread.
                inject.push_batch(iter::once(task));
                return None;
            }
            match self.push_overflow(task, real, inject) {
                Ok(()) => return None,
                // A thief claimed tasks since our load: retry, now with room.
                Err(returned) => task = returned,
            }
        }
    }

    /// The full-ring path: claim the oldest `CAP / 2` tasks by moving `head`
    /// past them, then push them and `task` to `inject`. Fails (giving
    /// `task` back) if `head` moved meanwhile.
    fn push_overflow(&mut self, task: T, head: u32, inject: &Inject<T>) -> Result<(), T> {
        debug_assert_eq!(self.tail.wrapping_sub(head), CAP);
        let new_head = pack(
            head.wrapping_add(OVERFLOW_BATCH),
            head.wrapping_add(OVERFLOW_BATCH),
        );
        // An RMW, so it fails if any thief claimed meanwhile; no steal is
        // in progress (`steal == real == head` is what we compare against),
        // so this claim is exclusive.
        match self
            .inner
            .head
            .compare_exchange(pack(head, head), new_head, AcqRel, Acquire)
        {
            Ok(_) => self.head = new_head,
            Err(actual) => {
                self.head = actual;
                return Err(task);
            }
        }
        let inner = &*self.inner;
        let batch = (0..OVERFLOW_BATCH).map(|i| {
            // SAFETY: the CAS moved `[head, head + CAP/2)` out of
            // `[steal, tail)`: those slots are ours (invariant 2), and they
            // were initialised by this thread (only the owner writes slots).
            unsafe { inner.take(head.wrapping_add(i)) }
        });
        inject.push_batch(batch.chain(iter::once(task)));
        Ok(())
    }

    /// Pushes every task of `tasks` at the tail (one `tail` store).
    ///
    /// # Panics
    ///
    /// If `tasks.len()` exceeds [`remaining_slots`](Self::remaining_slots).
    /// (The caller guarantees room; the check is a real `assert!` because
    /// overrunning would overwrite slots a thief may be reading, and it is
    /// one comparison per batch.)
    pub(super) fn push_back(&mut self, tasks: impl ExactSizeIterator<Item = T>) {
        let len = tasks.len();
        let free = self.free_slots(u32::try_from(len).unwrap_or(u32::MAX));
        assert!(
            len <= free as usize,
            "Local::push_back: {len} tasks do not fit"
        );
        let tail = self.tail;
        let mut pushed = 0u32;
        // `take(len)`: never trust an `ExactSizeIterator` for soundness.
        for task in tasks.take(len) {
            // SAFETY: `pushed < len <= free`, so the slot is outside
            // `[steal, tail)` for a cached `steal` read with Acquire
            // (invariant 3).
            unsafe {
                self.inner
                    .put(tail.wrapping_add(pushed), MaybeUninit::new(task))
            };
            pushed += 1;
        }
        self.tail = tail.wrapping_add(pushed);
        // Release: publishes the slot writes.
        self.inner.tail.store(self.tail, Release);
    }

    /// Pops the task at the head (FIFO).
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        // Optimistically use the cached `head` as the CAS's expected value:
        // thieves rarely move it, and on failure the CAS hands back the
        // current value anyway.
        let mut head = self.head;
        loop {
            let (steal, real) = unpack(head);
            if real == self.tail {
                // The cached `real` is not ahead of the true one, and the
                // true one is not ahead of `tail`: empty.
                self.head = head;
                return None;
            }
            let next_real = real.wrapping_add(1);
            // No steal in progress: keep `steal == real`. Otherwise leave
            // `steal` alone; the thief releases its range later.
            let next = if steal == real {
                pack(next_real, next_real)
            } else {
                pack(steal, next_real)
            };
            match self
                .inner
                .head
                .compare_exchange(head, next, AcqRel, Acquire)
            {
                Ok(_) => {
                    self.head = next;
                    // SAFETY: our CAS removed `real` from `[real, tail)`, so
                    // the slot is ours (invariant 2); it was initialised by
                    // this thread.
                    return Some(unsafe { self.inner.take(real) });
                }
                Err(actual) => head = actual,
            }
        }
    }
}

impl<T> Drop for Local<T> {
    /// Drops every task still queued. (Tasks a thief is copying out are the
    /// thief's.)
    fn drop(&mut self) {
        let tail = self.tail;
        let mut head = self.inner.head.load(Acquire);
        loop {
            let (steal, real) = unpack(head);
            if real == tail {
                return;
            }
            // Claim everything in one CAS, as `pop` would one by one.
            let next = if steal == real {
                pack(tail, tail)
            } else {
                pack(steal, tail)
            };
            match self
                .inner
                .head
                .compare_exchange(head, next, AcqRel, Acquire)
            {
                Ok(_) => {
                    let mut index = real;
                    while index != tail {
                        // SAFETY: the CAS removed `[real, tail)` from the
                        // queue: those slots are ours, initialised by the
                        // owner (invariant 2).
                        drop(unsafe { self.inner.take(index) });
                        index = index.wrapping_add(1);
                    }
                    return;
                }
                Err(actual) => head = actual,
            }
        }
    }
}

impl<T: Send> Steal<T> {
    /// Tasks queued now (a snapshot; may be stale by the time it returns).
    #[allow(dead_code)] // queue API (metrics, tests); not every build uses it
    pub(crate) fn len(&self) -> usize {
        let (_, real) = unpack(self.0.head.load(Acquire));
        let tail = self.0.tail.load(Acquire);
        // `tail` was loaded after `head`, so it is not behind `real`; it may
        // be more than a lap ahead of a stale `real`, hence the clamp.
        (tail.wrapping_sub(real) as usize).min(LOCAL_QUEUE_CAPACITY)
    }

    pub(crate) fn is_empty(&self) -> bool {
        let (_, real) = unpack(self.0.head.load(Acquire));
        real == self.0.tail.load(Acquire)
    }

    /// Steals half (rounded up) of this queue's tasks into `dst` and returns
    /// one of them (the others land in `dst`). `None` if there was nothing
    /// to steal, another steal from this queue is in progress, `dst` has
    /// fewer than `CAP / 2` free slots, or `dst` is this very queue.
    pub(crate) fn steal_into(&self, dst: &mut Local<T>) -> Option<T> {
        if Arc::ptr_eq(&self.0, &dst.inner) {
            return None;
        }
        // We own `dst`. Its free slots per its cached `head`, refreshed
        // with Acquire if short (so its thieves' reads of the free slots
        // happen-before our writes).
        if dst.free_slots(CAP / 2) < CAP / 2 {
            // We may take up to CAP/2.
            return None;
        }
        let dst_tail = dst.tail;
        let n = self.steal_into_inner(dst, dst_tail);
        if n == 0 {
            return None;
        }
        // Hand back the last stolen task, publish the others.
        let last = dst_tail.wrapping_add(n - 1);
        // SAFETY: slot `last` of `dst` was just written by this thread (the
        // owner of `dst`) and is not yet published (outside `[real, tail)`
        // of `dst`), so no one else can access it.
        let task = unsafe { dst.inner.take(last) };
        if n > 1 {
            dst.tail = last;
            // Release: publishes the copied slots to `dst`'s thieves.
            dst.inner.tail.store(last, Release);
        }
        Some(task)
    }

    /// Claims `ceil(len / 2)` tasks of this queue, moves them to `dst`'s
    /// slots `[dst_tail, dst_tail + n)` (not yet published) and releases the
    /// claim. Returns `n` (0 if nothing was claimed). The caller checked that
    /// `dst` has at least `CAP / 2` free slots.
    fn steal_into_inner(&self, dst: &mut Local<T>, dst_tail: u32) -> u32 {
        let src = &*self.0;
        let mut prev = src.head.load(Acquire);
        let (first, n) = loop {
            let (steal, real) = unpack(prev);
            if steal != real {
                // Another thief is copying out of this queue (invariant 4).
                return 0;
            }
            // Acquire: pairs with the owner's Release store of `tail`, so the
            // slot writes below `tail` happen-before our reads.
            let tail = src.tail.load(Acquire);
            let len = tail.wrapping_sub(real);
            if len > CAP {
                // `prev` is stale by more than a lap; the CAS would fail.
                prev = src.head.load(Acquire);
                continue;
            }
            let n = len - len / 2;
            if n == 0 {
                return 0;
            }
            let next = pack(steal, real.wrapping_add(n));
            match src.head.compare_exchange(prev, next, AcqRel, Acquire) {
                Ok(_) => break (real, n),
                Err(actual) => prev = actual,
            }
        };
        debug_assert!(n <= CAP / 2);
        for i in 0..n {
            let task = src.buffer[first.wrapping_add(i) as usize & MASK].with(|slot| {
                // SAFETY: our CAS moved `[first, first + n)` out of
                // `[real, tail)` into `[steal, real)`: the range is ours
                // (invariants 2, 4) and the owner will not rewrite it until
                // we release it below. Its slots were initialised before the
                // owner's Release store of a `tail` past them, which our
                // Acquire load observed. Read as `MaybeUninit` so the copy
                // is a plain move of bytes.
                unsafe { slot.read() }
            });
            // SAFETY: `dst_tail + i < dst_steal + CAP` since `dst` had at
            // least CAP/2 >= n free slots (checked by the caller with an
            // Acquire load of `dst.head`) and free slots only grow while we
            // hold `&mut dst`; so the slot is outside `[steal, tail)` of
            // `dst` (invariant 3) and this thread is `dst`'s owner.
            unsafe { dst.inner.put(dst_tail.wrapping_add(i), task) };
        }
        // Release `[first, first + n)`: set `steal = real`. The owner may
        // have popped meanwhile (moving `real`), hence the loop. Release:
        // our slot reads above happen-before the owner's rewrite of them.
        let mut prev = pack(first, first.wrapping_add(n));
        loop {
            let (steal, real) = unpack(prev);
            debug_assert_eq!(steal, first);
            match src
                .head
                .compare_exchange(prev, pack(real, real), AcqRel, Acquire)
            {
                Ok(_) => return n,
                Err(actual) => prev = actual,
            }
        }
    }
}

impl<T> Clone for Steal<T> {
    fn clone(&self) -> Self {
        Steal(self.0.clone())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};

    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn auto_traits() {
        assert_send::<Local<Box<u8>>>();
        assert_send_sync::<Steal<Box<u8>>>();
        assert_send_sync::<Inject<Box<u8>>>();
    }

    fn drain<T: Send>(local: &mut Local<T>) -> Vec<T> {
        iter::from_fn(|| local.pop()).collect()
    }

    #[test]
    fn push_pop_fifo() {
        let inject = Inject::new();
        let (mut local, steal) = local();
        assert!(local.is_empty() && steal.is_empty());
        assert_eq!(local.pop(), None);
        for i in 0..100 {
            local.push_back_or_overflow(i, &inject);
        }
        assert_eq!(local.len(), 100);
        assert_eq!(steal.len(), 100);
        assert_eq!(local.remaining_slots(), LOCAL_QUEUE_CAPACITY - 100);
        for i in 0..50 {
            assert_eq!(local.pop(), Some(i));
        }
        local.push_back(1000..1010);
        assert_eq!(
            drain(&mut local),
            (50..100).chain(1000..1010).collect::<Vec<_>>()
        );
        assert!(inject.is_empty());
    }

    #[test]
    fn overflow_moves_half_plus_one_in_order() {
        let inject = Inject::new();
        let (mut local, _steal) = local();
        let cap = LOCAL_QUEUE_CAPACITY;
        for i in 0..cap {
            local.push_back_or_overflow(i, &inject);
        }
        assert!(inject.is_empty());
        assert_eq!(local.remaining_slots(), 0);
        local.push_back_or_overflow(cap, &inject);
        assert_eq!(inject.len(), cap / 2 + 1);
        assert_eq!(local.len(), cap / 2);
        let global: Vec<_> = inject.pop_n(usize::MAX).collect();
        let mut expected: Vec<_> = (0..cap / 2).collect();
        expected.push(cap);
        assert_eq!(global, expected);
        assert_eq!(drain(&mut local), (cap / 2..cap).collect::<Vec<_>>());
    }

    #[test]
    fn overflow_many_loses_nothing() {
        let inject = Inject::new();
        let (mut local, _steal) = local();
        let n = LOCAL_QUEUE_CAPACITY * 10 + 7;
        for i in 0..n {
            local.push_back_or_overflow(i, &inject);
        }
        let mut all: Vec<_> = inject.pop_n(usize::MAX).chain(drain(&mut local)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn steal_takes_half() {
        let inject = Inject::new();
        let (mut a, steal_a) = local();
        let (mut b, steal_b) = local();
        for i in 0..11 {
            a.push_back_or_overflow(i, &inject);
        }
        // ceil(11 / 2) = 6 stolen: 0..5 land in b, 5 is returned.
        assert_eq!(steal_a.steal_into(&mut b), Some(5));
        assert_eq!(a.len(), 5);
        assert_eq!(b.len(), 5);
        assert_eq!(steal_b.len(), 5);
        assert_eq!(drain(&mut b), (0..5).collect::<Vec<_>>());
        assert_eq!(steal_a.steal_into(&mut b), Some(8)); // 6,7,8 of 6..11
        assert_eq!(drain(&mut b), vec![6, 7]);
        assert_eq!(drain(&mut a), vec![9, 10]);
        assert_eq!(steal_a.steal_into(&mut b), None);
        // A single task is stolen and returned directly.
        a.push_back(iter::once(42));
        assert_eq!(steal_a.steal_into(&mut b), Some(42));
        assert!(b.is_empty());
        // Self-steal is refused.
        a.push_back(iter::once(1));
        let steal_a2 = steal_a.clone();
        assert_eq!(steal_a2.steal_into(&mut a), None);
        assert_eq!(a.pop(), Some(1));
    }

    #[test]
    fn steal_refuses_when_dst_lacks_room() {
        let (mut a, steal_a) = local();
        let (mut b, _) = local();
        a.push_back(0..10);
        b.push_back(0..LOCAL_QUEUE_CAPACITY / 2 + 1);
        assert_eq!(steal_a.steal_into(&mut b), None);
        assert_eq!(a.len(), 10);
        b.pop();
        assert_eq!(steal_a.steal_into(&mut b), Some(4));
    }

    #[test]
    fn wrap_around_u32_indices() {
        let inject = Inject::new();
        let start = u32::MAX - 3 * CAP / 2;
        let (mut a, steal_a) = local_at(start);
        let (mut b, _steal_b) = local_at(u32::MAX - 5);
        let mut expected = 0usize;
        let mut seen = Vec::new();
        // Several laps across the u32 wrap, with overflow and steals.
        for round in 0..40usize {
            for i in 0..(CAP as usize - 3) {
                a.push_back_or_overflow(round * 1000 + i, &inject);
                expected += 1;
            }
            if let Some(t) = steal_a.steal_into(&mut b) {
                seen.push(t);
            }
            for _ in 0..(CAP as usize / 3) {
                seen.extend(a.pop());
            }
            seen.extend(drain(&mut b));
        }
        seen.extend(drain(&mut a));
        seen.extend(inject.pop_n(usize::MAX));
        assert_eq!(seen.len(), expected);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), expected);
        assert!(a.is_empty() && b.is_empty());
        // Indices really did wrap.
        let (_, real) = unpack(a.inner.head.load(SeqCst));
        assert!(real < start);
    }

    #[test]
    fn drop_drops_remaining_tasks() {
        let token = std::sync::Arc::new(());
        let inject = Inject::new();
        let (mut local, steal) = local();
        for _ in 0..LOCAL_QUEUE_CAPACITY + 10 {
            local.push_back_or_overflow(token.clone(), &inject);
        }
        local.pop();
        drop(local);
        assert!(steal.is_empty());
        drop(inject);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
        drop(steal);
    }

    /// One owner pushes and pops `N` tokens while two thieves steal; every
    /// token must be seen exactly once.
    #[test]
    fn stress_owner_and_two_thieves() {
        const N: usize = if cfg!(miri) { 2_000 } else { 1_000_000 };
        let seen: std::sync::Arc<Vec<AtomicU8>> =
            std::sync::Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
        let inject = std::sync::Arc::new(Inject::new());
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (mut owner, steal) = local::<Box<usize>>();

        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (steal, seen, done) = (steal.clone(), seen.clone(), done.clone());
                std::thread::spawn(move || {
                    let (mut mine, _) = local::<Box<usize>>();
                    let mut count = 0usize;
                    let mark = |t: Box<usize>| assert_eq!(seen[*t].fetch_add(1, SeqCst), 0);
                    loop {
                        let finished = done.load(SeqCst);
                        if let Some(t) = steal.steal_into(&mut mine) {
                            count += 1;
                            mark(t);
                            while let Some(t) = mine.pop() {
                                count += 1;
                                mark(t);
                            }
                        } else if finished {
                            break;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    count
                })
            })
            .collect();

        let mut owned = 0usize;
        for i in 0..N {
            owner.push_back_or_overflow(Box::new(i), &inject);
            if i % 3 == 0 {
                if let Some(t) = owner.pop() {
                    owned += 1;
                    assert_eq!(seen[*t].fetch_add(1, SeqCst), 0);
                }
            }
        }
        while let Some(t) = owner.pop() {
            owned += 1;
            assert_eq!(seen[*t].fetch_add(1, SeqCst), 0);
        }
        done.store(true, SeqCst);
        let stolen: usize = thieves.into_iter().map(|h| h.join().unwrap()).sum();
        let mut global = 0usize;
        while let Some(t) = inject.pop() {
            global += 1;
            assert_eq!(seen[*t].fetch_add(1, SeqCst), 0);
        }
        assert_eq!(owned + stolen + global, N);
        assert!(seen.iter().all(|s| s.load(SeqCst) == 1));
        eprintln!("stress: owner {owned}, stolen {stolen}, via injector {global}");
    }

    /// `cargo test --release -- --ignored --nocapture bench_push_pop`
    #[test]
    #[ignore = "timing, run by hand in release mode"]
    fn bench_push_pop() {
        use std::hint::black_box;
        use std::time::Instant;
        const ITERS: usize = 20_000_000;
        let inject = Inject::new();
        let (mut local, _steal) = local::<usize>();
        let worker = crossbeam_deque::Worker::new_fifo();
        for round in 0..3 {
            let start = Instant::now();
            for i in 0..ITERS {
                local.push_back_or_overflow(black_box(i), &inject);
                black_box(local.pop());
            }
            let ours = start.elapsed().as_secs_f64() * 1e9 / ITERS as f64;

            let start = Instant::now();
            for i in 0..ITERS {
                worker.push(black_box(i));
                black_box(worker.pop());
            }
            let cb = start.elapsed().as_secs_f64() * 1e9 / ITERS as f64;

            // Batch shape: fill 128, then drain (the scheduler's usual burst).
            let start = Instant::now();
            for _ in 0..ITERS / 128 {
                for i in 0..128 {
                    local.push_back_or_overflow(black_box(i), &inject);
                }
                while let Some(t) = local.pop() {
                    black_box(t);
                }
            }
            let ours_b = start.elapsed().as_secs_f64() * 1e9 / (ITERS / 128 * 128) as f64;
            let start = Instant::now();
            for _ in 0..ITERS / 128 {
                for i in 0..128 {
                    worker.push(black_box(i));
                }
                while let Some(t) = worker.pop() {
                    black_box(t);
                }
            }
            let cb_b = start.elapsed().as_secs_f64() * 1e9 / (ITERS / 128 * 128) as f64;
            println!(
                "round {round}: push+pop corun {ours:.2} ns, crossbeam fifo {cb:.2} ns | \
                 128-burst corun {ours_b:.2} ns, crossbeam fifo {cb_b:.2} ns (per task)"
            );
        }
    }
}

/// The loom models of the ring and the injector (all models live in
/// `scheduler/models/`).
#[cfg(all(test, loom))]
#[path = "../models/queue.rs"]
mod loom_tests;
