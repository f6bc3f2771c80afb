//! `select!`: wait on several channel operations, complete exactly one.
//!
//! As Go's `selectgo`, in two passes over the cases in a random order (so every ready
//! case is equally likely to be chosen):
//!
//! 1. try each case without waiting; the first that completes is the answer;
//! 2. otherwise queue one [`WaitEntry`] per case, all sharing one [`Selector`], checking
//!    readiness again under each channel's lock as it goes, then park. The first
//!    waker to win the selector's CAS completes its case; the others find a selector
//!    that is no longer waiting and skip its entries. Then every entry still queued is
//!    removed (Go's `sellock`-free variant: one channel lock at a time).
//!
//! If pass 2 finds a case ready while queueing (a counterpart arrived between the
//! passes), it withdraws the selector (`WAITING -> ABORTED`) and starts again from
//! pass 1; if the withdrawal fails, a waker already completed a case, which is the
//! answer. One lock is held at a time, so selects over channels in any order cannot
//! deadlock each other.

use super::channel::{Chan, Side};
use super::error::{RecvError, SendError, TrySendError};
use super::waiters::park;
use super::waiters::{loom_yield, Selector, WaitEntry, ABORTED};
use super::{Receiver, Sender};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// How long `select` may wait.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Until a case completes.
    Block,
    /// Not at all (`default =>`).
    NonBlocking,
    /// Until the deadline (`default(timeout) =>`).
    Deadline(Instant),
}

impl Mode {
    /// `Deadline(now + d)` (`Block` if that overflows).
    pub fn timeout(d: Duration) -> Mode {
        match Instant::now().checked_add(d) {
            Some(at) => Mode::Deadline(at),
            None => Mode::Block,
        }
    }
}

/// One arm of a `select!`, with its element type erased.
///
/// # Safety
/// Implementors keep their entry at a fixed address from `register` until
/// `unregister` or `finish` (they are only used behind `&mut dyn Case` inside
/// [`select`], which calls one of those on every registered case before returning).
pub unsafe trait Case {
    /// Pass 1: completes the operation if it needs no waiting.
    fn try_now(&mut self) -> bool;
    /// Pass 2, under the channel lock: `true` if the case could complete now (do not
    /// queue); else queues the case's entry as case `idx` of `sel`.
    ///
    /// # Safety
    /// `self` and `sel` must stay where they are until `unregister` or `finish`.
    unsafe fn register(&mut self, sel: &Selector, idx: usize) -> bool;
    /// Removes the entry if it is still queued (a no-op if never queued).
    fn unregister(&mut self);
    /// The selector chose this case: the waker unlinked the entry; move its slot into
    /// the result.
    fn finish(&mut self);
    /// Whether this case completed.
    fn is_chosen(&self) -> bool;
}

/// A `recv(rx) -> res` arm.
pub struct RecvCase<'a, T> {
    chan: &'a Chan<T>,
    entry: WaitEntry<T>,
    queued: bool,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// An arm receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            chan: rx.chan(),
            entry: WaitEntry::new(None),
            queued: false,
            result: None,
        }
    }

    /// The result of the arm that was chosen.
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.result.take().expect("select! arm taken twice")
    }
}

// SAFETY: the entry is only queued by `register` (whose contract pins `self`) and every
// path out of `select` unlinks it through `unregister` or learns via `finish` that the
// waker did.
unsafe impl<T> Case for RecvCase<'_, T> {
    fn try_now(&mut self) -> bool {
        match self.chan.try_recv() {
            Ok(v) => self.result = Some(Ok(v)),
            Err(e) if e.is_disconnected() => self.result = Some(Err(RecvError)),
            Err(_) => return false,
        }
        true
    }

    unsafe fn register(&mut self, sel: &Selector, idx: usize) -> bool {
        let mut g = self.chan.lock();
        if self.chan.ready(&g, Side::Recv, sel) {
            return true;
        }
        self.entry.bind(sel, idx);
        // SAFETY: our caller pins `self` (hence the entry) and `sel` until
        // `unregister`/`finish`, which unlink it or find it unlinked.
        unsafe { g.recvq.push(NonNull::from(&mut self.entry)) };
        self.chan.bump();
        self.queued = true;
        false
    }

    fn unregister(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.chan.unlink(Side::Recv, NonNull::from(&mut self.entry));
        }
    }

    fn finish(&mut self) {
        self.queued = false;
        self.result = Some(self.entry.slot_mut().take().ok_or(RecvError));
    }

    fn is_chosen(&self) -> bool {
        self.result.is_some()
    }
}

/// A `send(tx, value) -> res` arm.
pub struct SendCase<'a, T> {
    chan: &'a Chan<T>,
    entry: WaitEntry<T>,
    queued: bool,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// An arm sending `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendCase {
            chan: tx.chan(),
            entry: WaitEntry::new(Some(value)),
            queued: false,
            result: None,
        }
    }

    /// The result of the arm that was chosen.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("select! arm taken twice")
    }
}

// SAFETY: as for `RecvCase`.
unsafe impl<T> Case for SendCase<'_, T> {
    fn try_now(&mut self) -> bool {
        let v = self.entry.slot_mut().take().expect("unsent value");
        match self.chan.try_send(v) {
            Ok(()) => self.result = Some(Ok(())),
            Err(TrySendError::Disconnected(v)) => self.result = Some(Err(SendError(v))),
            Err(TrySendError::Full(v)) => {
                *self.entry.slot_mut() = Some(v);
                return false;
            }
        }
        true
    }

    unsafe fn register(&mut self, sel: &Selector, idx: usize) -> bool {
        let mut g = self.chan.lock();
        if self.chan.ready(&g, Side::Send, sel) {
            return true;
        }
        self.entry.bind(sel, idx);
        // SAFETY: as in `RecvCase::register`.
        unsafe { g.sendq.push(NonNull::from(&mut self.entry)) };
        self.chan.bump();
        self.queued = true;
        false
    }

    fn unregister(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.chan.unlink(Side::Send, NonNull::from(&mut self.entry));
        }
    }

    fn finish(&mut self) {
        self.queued = false;
        self.result = Some(match self.entry.slot_mut().take() {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        });
    }

    fn is_chosen(&self) -> bool {
        self.result.is_some()
    }
}

/// Most arms one `select!` may have.
pub const MAX_CASES: usize = 64;

#[cfg(not(loom))]
thread_local! {
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A cheap per-thread random number (xorshift64*). Not inlined: a thread-local address
/// must not be cached across a coroutine switch (docs/safety.md).
#[cfg(not(loom))]
#[inline(never)]
fn random() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        if x == 0 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            x = (t ^ (c as *const _ as u64)) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// Under loom every execution of a model must make the same choices: a fixed poll order
/// (the models are symmetric in their arms).
#[cfg(loom)]
fn random() -> u64 {
    0
}

/// Unregisters every queued case on the way out, including when unwinding out of
/// `park` (cancellation).
struct Registered<'c, 'd> {
    cases: &'c mut [&'d mut dyn Case],
    sel: Selector,
}

impl Registered<'_, '_> {
    /// Unlinks every case but `keep` (the winner, which its waker unlinked).
    fn unregister_all(&mut self, keep: Option<usize>) {
        for (i, c) in self.cases.iter_mut().enumerate() {
            if Some(i) != keep {
                c.unregister();
            }
        }
    }
}

impl Drop for Registered<'_, '_> {
    fn drop(&mut self) {
        // Normal exits have unregistered already (this is then a cheap scan); on unwind,
        // withdraw first so no waker completes a case we can no longer report.
        let keep = match self.sel.try_abort() {
            true => None,
            false => self.sel.selected().filter(|&s| s != ABORTED),
        };
        self.unregister_all(keep);
    }
}

/// Runs a select over `cases`: the index of the case that completed, or `None` when
/// `mode` let it give up (`default`). Used by [`select!`](crate::select).
pub fn select(cases: &mut [&mut dyn Case], mode: Mode) -> Option<usize> {
    let n = cases.len();
    assert!(n <= MAX_CASES, "select! supports at most {MAX_CASES} arms");
    if !matches!(mode, Mode::NonBlocking) {
        crate::sched::budget::consume();
    }
    // Random poll order (Fisher-Yates).
    let mut order = [0u8; MAX_CASES];
    for i in 0..n {
        let j = (random() % (i as u64 + 1)) as usize;
        order[i] = order[j];
        order[j] = i as u8;
    }
    let order = &order[..n];
    let mut reg = Registered {
        cases,
        sel: Selector::new(),
    };
    loop {
        // Pass 1: anything ready now?
        for &i in order {
            if reg.cases[i as usize].try_now() {
                return Some(i as usize);
            }
        }
        let deadline = match mode {
            Mode::NonBlocking => return None,
            Mode::Deadline(d) if Instant::now() >= d => return None,
            Mode::Deadline(d) => Some(d),
            Mode::Block => None,
        };
        // Pass 2: queue on every channel, re-checking readiness under each lock.
        let mut ready = false;
        for &i in order {
            // SAFETY: the cases are borrowed for this whole call and `reg.sel` does not
            // move while `reg` lives; every queued entry is unlinked (or found unlinked
            // by `finish`) before `reg` is dropped, including on unwind.
            if unsafe { reg.cases[i as usize].register(&reg.sel, i as usize) } {
                ready = true;
                break;
            }
        }
        if ready && reg.sel.try_abort() {
            // A counterpart arrived meanwhile: withdraw everything and poll again.
            reg.unregister_all(None);
            reg.sel.reset();
            continue;
        }
        if !ready {
            loom_yield();
            loop {
                if reg.sel.selected().is_some() {
                    break;
                }
                match deadline {
                    None => park::park(park::Reason::Select, None, park::Cancel::Point),
                    Some(d) => {
                        if Instant::now() >= d {
                            if reg.sel.try_abort() {
                                reg.unregister_all(None);
                                return None;
                            }
                            continue;
                        }
                        park::park(park::Reason::Select, Some(d), park::Cancel::Point);
                    }
                }
            }
        }
        let won = reg
            .sel
            .selected()
            .filter(|&s| s != ABORTED)
            .expect("a waker completed a case");
        reg.unregister_all(Some(won));
        reg.cases[won].finish();
        return Some(won);
    }
}

/// Waits on several channel operations and runs the arm of the one that completes,
/// as Go's `select`.
///
/// Arms, in any order and number (up to 64), each followed by `,` unless its body is a
/// block:
/// - `recv(rx) -> res => body`: `res` is `Result<T, RecvError>` (`Err` once the channel
///   is closed and drained);
/// - `send(tx, value) -> res => body`: `res` is `Result<(), SendError<T>>`;
/// - `default => body`: run when no operation can complete at once;
/// - `default(timeout) => body`: run when none completes within `timeout`.
///
/// Without a `default` arm the select waits (parking the coroutine, or blocking the
/// thread) until an operation completes. When several are ready, one is chosen at
/// random. Channel and value expressions are evaluated once, in order, before waiting;
/// the value of a send arm that is not chosen is dropped.
///
/// ```
/// use corun::chan;
/// use std::time::Duration;
///
/// let (tx, rx) = chan::unbounded::<i32>();
/// let (quit_tx, quit) = chan::bounded::<()>(0);
/// let h = corun::go!(move || {
///     let mut sum = 0;
///     loop {
///         corun::select! {
///             recv(rx) -> v => sum += v.unwrap(),
///             recv(quit) -> _ => return sum,
///         }
///     }
/// });
/// for i in 1..=10 {
///     tx.send(i).unwrap();
/// }
/// while !tx.is_empty() {
///     corun::yield_now();
/// }
/// quit_tx.send(()).unwrap();
/// assert_eq!(h.join().unwrap(), 55);
///
/// // A timeout, and send and recv arms of different element types.
/// let (stx, _srx) = chan::bounded::<String>(0); // nobody receives
/// let (_utx, urx) = chan::bounded::<u8>(0); // nobody sends
/// let what = corun::select! {
///     send(stx, "hello".to_string()) -> _ => "sent",
///     recv(urx) -> _ => "received",
///     default(Duration::from_millis(10)) => "timed out",
/// };
/// assert_eq!(what, "timed out");
/// ```
#[macro_export]
macro_rules! select {
    ($($arms:tt)*) => {
        $crate::__corun_select!(@parse [] [] [$($arms)*] [
            __c0 __c1 __c2 __c3 __c4 __c5 __c6 __c7 __c8 __c9 __c10 __c11 __c12 __c13
            __c14 __c15 __c16 __c17 __c18 __c19 __c20 __c21 __c22 __c23 __c24 __c25 __c26
            __c27 __c28 __c29 __c30 __c31 __c32 __c33 __c34 __c35 __c36 __c37 __c38 __c39
            __c40 __c41 __c42 __c43 __c44 __c45 __c46 __c47 __c48 __c49 __c50 __c51 __c52
            __c53 __c54 __c55 __c56 __c57 __c58 __c59 __c60 __c61 __c62 __c63
        ])
    };
}

/// The parser and code generator behind [`select!`]; not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __corun_select {
    // ---- parsing: [cases] [default] [tokens left] [names left] ----
    (@parse [$($c:tt)*] [$($d:tt)*]
        [recv($rx:expr) -> $res:pat => $body:block, $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (recv $id ($rx) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [recv($rx:expr) -> $res:pat => $body:block $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (recv $id ($rx) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [recv($rx:expr) -> $res:pat => $body:expr, $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (recv $id ($rx) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [recv($rx:expr) -> $res:pat => $body:expr] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (recv $id ($rx) $res => $body)] [$($d)*] [] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [send($tx:expr, $v:expr) -> $res:pat => $body:block, $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (send $id ($tx, $v) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [send($tx:expr, $v:expr) -> $res:pat => $body:block $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (send $id ($tx, $v) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [send($tx:expr, $v:expr) -> $res:pat => $body:expr, $($rest:tt)*] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (send $id ($tx, $v) $res => $body)] [$($d)*] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*]
        [send($tx:expr, $v:expr) -> $res:pat => $body:expr] [$id:ident $($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)* (send $id ($tx, $v) $res => $body)] [$($d)*] [] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default($t:expr) => $body:block, $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::timeout($t)) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default($t:expr) => $body:block $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::timeout($t)) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default($t:expr) => $body:expr, $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::timeout($t)) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default($t:expr) => $body:expr] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::timeout($t)) $body] [] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default => $body:block, $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::NonBlocking) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default => $body:block $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::NonBlocking) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default => $body:expr, $($rest:tt)*] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::NonBlocking) $body] [$($rest)*] [$($ids)*])
    };
    (@parse [$($c:tt)*] []
        [default => $body:expr] [$($ids:ident)*]) => {
        $crate::__corun_select!(@parse [$($c)*] [($crate::chan::__private::Mode::NonBlocking) $body] [] [$($ids)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)+] [default $($rest:tt)*] [$($ids:ident)*]) => {
        ::std::compile_error!("select! takes at most one `default` arm")
    };
    (@parse [$($c:tt)*] [$($d:tt)*] [] [$($ids:ident)*]) => {
        $crate::__corun_select!(@emit [$($c)*] [$($d)*])
    };
    (@parse [$($c:tt)*] [$($d:tt)*] [$($rest:tt)+] []) => {
        ::std::compile_error!("select! supports at most 64 arms")
    };
    (@parse [$($c:tt)*] [$($d:tt)*] [$($rest:tt)+] [$($ids:ident)*]) => {
        ::std::compile_error!(
            "select! arms are `recv(rx) -> res => body`, `send(tx, value) -> res => body`, \
             `default => body` or `default(timeout) => body`"
        )
    };

    // ---- code generation ----
    (@emit [$($case:tt)*] [$($mode:tt $dbody:tt)?]) => {{
        $( $crate::__corun_select!(@bind $case); )*
        #[allow(unused_variables)]
        let __mode = $crate::chan::__private::Mode::Block;
        $( let __mode = $mode; )?
        let __chosen = $crate::chan::__private::select(
            &mut [$( $crate::__corun_select!(@dyn $case) ),*],
            __mode,
        );
        $crate::__corun_select!(@dispatch __chosen [$($case)*] [$($dbody)?])
    }};
    (@bind (recv $id:ident ($rx:expr) $res:pat => $body:tt)) => {
        let $id = &$rx;
        #[allow(unused_mut)]
        let mut $id = $crate::chan::__private::RecvCase::new($id);
    };
    (@bind (send $id:ident ($tx:expr, $v:expr) $res:pat => $body:tt)) => {
        let $id = &$tx;
        #[allow(unused_mut)]
        let mut $id = $crate::chan::__private::SendCase::new($id, $v);
    };
    (@dyn ($kind:ident $id:ident $($rest:tt)*)) => {
        &mut $id as &mut dyn $crate::chan::__private::Case
    };
    (@dispatch $chosen:ident [($kind:ident $id:ident $args:tt $res:pat => $body:tt) $($more:tt)*] [$($dbody:tt)?]) => {
        if $crate::chan::__private::Case::is_chosen(&$id) {
            let $res = $id.take();
            $body
        } else {
            $crate::__corun_select!(@dispatch $chosen [$($more)*] [$($dbody)?])
        }
    };
    (@dispatch $chosen:ident [] [$dbody:tt]) => {{
        let _ = $chosen;
        $dbody
    }};
    (@dispatch $chosen:ident [] []) => {{
        let _ = $chosen;
        ::std::unreachable!("select! without default returned no arm")
    }};
}
