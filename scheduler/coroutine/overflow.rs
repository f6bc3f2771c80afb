//! Stack overflow reporting for coroutines.
//!
//! A SIGSEGV/SIGBUS handler checks whether the fault hit the guard page of
//! the coroutine running on this thread; if so it prints
//! `coroutine <name> overflowed its stack of <N> KiB` and aborts. Any other
//! fault goes to the handler that was installed before ours (Rust std's,
//! which reports thread stack overflows), so std's behaviour is kept.

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

use crate::coroutine::stack::Stack;

/// Longest coroutine name kept for the report, in bytes.
pub const NAME_MAX: usize = 48;

/// Faults this far below a guard page still count as an overflow into it:
/// a frame that skips stack probes can jump past the guard.
const SLACK_PAGES: usize = 16;

/// Size of a sigaltstack we create; untouched pages cost no memory.
const ALTSTACK_SIZE: usize = 64 << 10;

/// What the fault handler needs to know about the running coroutine.
/// Owned by the coroutine; [`enter`] points the thread at it.
pub struct OverflowInfo {
    guard_lo: usize,
    guard_hi: usize,
    stack_kib: usize,
    name_len: usize,
    name: [u8; NAME_MAX],
}

impl OverflowInfo {
    /// Info for a stack whose guard page spans `[guard.0, guard.1)`.
    pub fn new(guard: (usize, usize), stack_kib: usize, name: &str) -> Self {
        let mut info = OverflowInfo {
            guard_lo: guard.0,
            guard_hi: guard.1,
            stack_kib,
            name_len: 0,
            name: [0; NAME_MAX],
        };
        info.set_name(name);
        info
    }

    /// Info for `stack`, named `name`.
    pub fn for_stack(stack: &Stack, name: &str) -> Self {
        Self::new(stack.guard(), stack.usable_size() / 1024, name)
    }

    /// Sets the name, cut at a char boundary to fit [`NAME_MAX`] bytes.
    pub fn set_name(&mut self, name: &str) {
        let mut n = name.len().min(NAME_MAX);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        self.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.name_len = n;
    }

    /// Names an anonymous coroutine `#<id>` without allocating.
    pub fn set_id(&mut self, id: u64) {
        let mut buf = Buf::new();
        buf.push(b"#");
        buf.push_num(id);
        let s = buf.as_bytes();
        self.name[..s.len()].copy_from_slice(s);
        self.name_len = s.len();
    }

    /// The name the report will use.
    pub fn name(&self) -> &str {
        // Only ever filled from whole chars of a &str or ASCII digits.
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Whether a fault at `addr` is an overflow of this stack.
    fn covers(&self, addr: usize, page: usize) -> bool {
        let lo = self.guard_lo.saturating_sub(SLACK_PAGES * page);
        (lo..self.guard_hi).contains(&addr)
    }
}

thread_local! {
    /// The coroutine running on this thread, or null. Atomic only so the
    /// signal handler's read is well defined; it is never shared.
    static CURRENT: AtomicPtr<OverflowInfo> = const { AtomicPtr::new(ptr::null_mut()) };
}

/// Marks `info`'s coroutine as running on this thread. Call right before
/// switching into it; costs one thread-local store.
///
/// # Safety
///
/// `info` must stay valid (not moved, not dropped) until [`leave`] or the
/// next `enter` runs on this thread: a fault handler may read it any time.
#[inline(never)]
pub unsafe fn enter(info: &OverflowInfo) {
    let p = info as *const OverflowInfo as *mut OverflowInfo;
    // Release: the handler must see `info`'s fields, not older contents.
    CURRENT.with(|c| c.store(p, Ordering::Release));
}

/// Marks that no coroutine runs on this thread. Call after switching out.
#[inline(never)]
pub fn leave() {
    CURRENT.with(|c| c.store(ptr::null_mut(), Ordering::Release));
}

/// The info set by [`enter`] on this thread, or null.
#[inline(never)]
fn current() -> *const OverflowInfo {
    CURRENT.with(|c| c.load(Ordering::Acquire))
}

/// The info of the stack this thread runs on now (null on a thread's own stack),
/// for [`restore`] once control comes back to this stack after a switch.
///
/// Fibers nest (a generator resumed from a coroutine, a coroutine that parks from
/// inside a generator's stack), so "who runs here" is not one fixed fiber: each
/// switch point saves what was current before it switches and puts it back after.
///
/// Inlined: it is read before a switch and never reused after it ([`restore`], which
/// runs after the switch, is an opaque call that finds the thread-local afresh).
#[inline]
pub fn saved() -> *const OverflowInfo {
    CURRENT.with(|c| c.load(Ordering::Relaxed))
}

/// Marks `info` (a value from [`saved`], possibly null) as running on this thread
/// again.
///
/// # Safety
///
/// As for [`enter`]: a non-null `info` must stay valid until the next `enter`,
/// `restore` or [`leave`] on this thread. A value [`saved`] on a stack and restored
/// when control returns to that same stack meets this: the info belongs to that
/// stack's fiber, whose entry frame is alive while code runs on it.
#[inline(never)]
pub unsafe fn restore(info: *const OverflowInfo) {
    CURRENT.with(|c| c.store(info as *mut OverflowInfo, Ordering::Release));
}

/// Page size for the handler, set by `install`, so the handler only reads a static.
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The actions installed before ours, for SIGSEGV and SIGBUS.
struct PrevActions(UnsafeCell<MaybeUninit<[libc::sigaction; 2]>>);

// SAFETY: written once inside `INSTALL` before our handler is installed,
// only read afterwards (the sigaction syscall orders the two).
unsafe impl Sync for PrevActions {}

static PREV: PrevActions = PrevActions(UnsafeCell::new(MaybeUninit::uninit()));
static INSTALL: Once = Once::new();
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the SIGSEGV/SIGBUS handler once per process, keeping the
/// previous actions to chain to. Later calls do nothing.
pub fn install() {
    INSTALL.call_once(|| {
        PAGE.store(crate::coroutine::stack::page_size(), Ordering::Relaxed);
        // SAFETY: `PREV` is written here only, before the handler that
        // reads it exists; sigaction gets valid pointers to initialised
        // structs. Reading the old action first (rather than through
        // `oldact` of the install call) means the handler never sees it
        // unset.
        unsafe {
            let prev = (*PREV.0.get()).as_mut_ptr() as *mut libc::sigaction;
            for (i, &sig) in SIGNALS.iter().enumerate() {
                let rc = libc::sigaction(sig, ptr::null(), prev.add(i));
                assert_eq!(rc, 0, "sigaction query failed");
            }
            for &sig in &SIGNALS {
                let mut act: libc::sigaction = std::mem::zeroed();
                let h: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    handler;
                act.sa_sigaction = h as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                let rc = libc::sigaction(sig, &act, ptr::null_mut());
                assert_eq!(rc, 0, "sigaction install failed");
            }
        }
    });
}

/// Our handler: report a coroutine overflow, else defer to the previous one.
/// Async-signal-safe: no allocation, no locks, only write(2) and abort(3).
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers,
    // and SIGSEGV/SIGBUS carry si_addr.
    let addr = unsafe { (*info).si_addr() } as usize;
    let cur = current();
    // SAFETY: a non-null `cur` was set by `enter`, whose contract keeps it
    // valid while set; we run on the same thread that set it.
    if let Some(cur) = unsafe { cur.as_ref() } {
        if cur.covers(addr, PAGE.load(Ordering::Relaxed)) {
            report(cur);
        }
    }
    // SAFETY: forwarding the kernel's own arguments to the prior handler.
    unsafe { chain(sig, info, ctx) }
}

/// Writes the overflow message to stderr and aborts.
fn report(info: &OverflowInfo) -> ! {
    let mut buf = Buf::new();
    buf.push(b"coroutine ");
    buf.push(&info.name[..info.name_len]);
    buf.push(b" overflowed its stack of ");
    buf.push_num(info.stack_kib as u64);
    buf.push(b" KiB\n");
    write_all(buf.as_bytes());
    let hint = HINT.load(Ordering::Acquire);
    if !hint.is_null() {
        // SAFETY: a non-null `HINT` came from a `&'static &'static [u8]` (`set_hint`):
        // never freed, and shared, so never changed.
        write_all(unsafe { *hint });
    }
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

/// What to do about an overflow, printed after the report; set by whoever builds on
/// this layer (the runtime names its own stack-size settings).
static HINT: AtomicPtr<&'static [u8]> = AtomicPtr::new(ptr::null_mut());

/// Sets the line printed after an overflow report (it should end with a newline).
/// The handler only reads it: nothing is formatted or allocated there.
pub fn set_hint(hint: &'static &'static [u8]) {
    HINT.store(ptr::from_ref(hint).cast_mut(), Ordering::Release);
}

/// Writes `out` to stderr with `write(2)` alone (async-signal-safe).
fn write_all(mut out: &[u8]) {
    while !out.is_empty() {
        // SAFETY: writing an initialised buffer to fd 2; async-signal-safe.
        let n = unsafe { libc::write(2, out.as_ptr().cast(), out.len()) };
        if n <= 0 {
            break;
        }
        out = &out[n as usize..];
    }
}

/// Hands a fault that is not ours to the action installed before ours.
///
/// # Safety
///
/// Must run inside the signal handler with the kernel's arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let idx = usize::from(sig == libc::SIGBUS);
    // SAFETY: initialised by `install` before this handler was installed.
    let prev = unsafe { &(*PREV.0.get()).assume_init_ref()[idx] };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Put the old action back and return: the faulting instruction
        // re-executes and the kernel applies that action.
        // SAFETY: `prev` is a valid action obtained from the kernel.
        unsafe { libc::sigaction(sig, prev, ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        type Action = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        // SAFETY: with SA_SIGINFO the kernel would call it with this type.
        let f: Action = unsafe { std::mem::transmute::<usize, Action>(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the handler takes only the signal.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute::<usize, _>(h) };
        f(sig);
    }
}

/// A sigaltstack we created, removed and unmapped at thread exit.
struct AltStack(Stack);

impl Drop for AltStack {
    fn drop(&mut self) {
        let sp = self.0.guard().1;
        // SAFETY: query then disable the altstack, only if it is still ours;
        // a thread-local destructor never runs on the altstack itself.
        unsafe {
            let mut cur: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(ptr::null(), &mut cur);
            if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_sp as usize == sp {
                let off = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, ptr::null_mut());
            }
        }
    }
}

thread_local! {
    /// This thread's own sigaltstack, if [`ensure_altstack`] made one.
    static ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Gives the calling thread a sigaltstack unless it has one (std gives one
/// to threads it spawns). The handler needs it: an overflowing coroutine
/// has no stack left to run it on.
#[inline(never)]
pub fn ensure_altstack() -> io::Result<()> {
    // SAFETY: querying into a zeroed out-parameter.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: null new-stack only queries.
    if unsafe { libc::sigaltstack(ptr::null(), &mut cur) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    // SAFETY: getauxval has no preconditions; 0 means unknown.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let stack = Stack::new(ALTSTACK_SIZE.max(libc::SIGSTKSZ).max(2 * min))?;
    let new = libc::stack_t {
        ss_sp: stack.guard().1 as *mut libc::c_void,
        ss_flags: 0,
        ss_size: stack.usable_size(),
    };
    // SAFETY: the memory stays mapped until `AltStack` drops, which first
    // disables the altstack.
    if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    ALTSTACK.with(|a| a.set(Some(AltStack(stack))));
    Ok(())
}

/// A fixed buffer for building messages without allocating.
struct Buf {
    bytes: [u8; 160],
    len: usize,
}

impl Buf {
    fn new() -> Self {
        Buf {
            bytes: [0; 160],
            len: 0,
        }
    }

    /// Appends as much of `s` as fits.
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    /// Appends `n` in decimal.
    fn push_num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corosensei::Coroutine;
    use std::time::Instant;

    /// Disables this thread's signal stack.
    ///
    /// # Safety
    /// Only for a child test thread that owns its signal stack setup.
    unsafe fn disable_altstack() {
        let off = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: a valid `stack_t` disabling the alternate stack; no old one wanted.
        unsafe { libc::sigaltstack(&off, ptr::null_mut()) };
    }

    /// Runs `f` in a forked child with stderr sent into a pipe; returns the
    /// wait status and what the child wrote to stderr.
    fn in_child(f: impl FnOnce()) -> (libc::c_int, String) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only runs `f` then `_exit`s; glibc malloc stays
        // usable after fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: redirecting the child's own stderr, then leaving
            // without running the test harness's exit path.
            unsafe {
                libc::dup2(fds[1], 2);
                f();
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: closing our write end, waiting for our own child, then
        // draining the pipe without blocking (other tests' children may
        // hold copies of the write end, so EOF could be late).
        unsafe {
            libc::close(fds[1]);
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK);
        }
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe { libc::read(fds[0], chunk.as_mut_ptr().cast(), chunk.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n as usize]);
        }
        // SAFETY: closing our read end.
        unsafe { libc::close(fds[0]) };
        (status, String::from_utf8_lossy(&out).into_owned())
    }

    fn died_by(status: libc::c_int, sig: libc::c_int) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == sig
    }

    /// Recurses until the stack runs out; the tests want exactly that.
    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn recurse(n: u64) -> u64 {
        let buf = std::hint::black_box([n as u8; 1024]);
        recurse(n + 1) + u64::from(std::hint::black_box(buf)[7])
    }

    fn overflow_coroutine(info: impl FnOnce(&Stack) -> OverflowInfo) {
        install();
        ensure_altstack().unwrap();
        let stack = Stack::new(64 << 10).unwrap();
        let info = info(&stack);
        let mut co = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| recurse(0));
        // SAFETY: `info` outlives the coroutine run; `leave` follows.
        unsafe { enter(&info) };
        co.resume(());
        leave();
    }

    #[test]
    fn coroutine_overflow_is_reported() {
        let (status, err) = in_child(|| overflow_coroutine(|s| OverflowInfo::for_stack(s, "deep")));
        // A runtime built by another test of this binary may have set the hint
        // that follows the first line.
        assert!(
            err.starts_with("coroutine deep overflowed its stack of 64 KiB\n"),
            "{err}"
        );
        assert!(died_by(status, libc::SIGABRT), "status {status:#x}");
    }

    #[test]
    fn anonymous_coroutine_uses_its_id() {
        let (status, err) = in_child(|| {
            // A thread without an altstack gets one from us.
            // SAFETY: disabling this (child) thread's altstack.
            unsafe { disable_altstack() };
            overflow_coroutine(|s| {
                let mut info = OverflowInfo::for_stack(s, "");
                info.set_id(42);
                info
            })
        });
        // A runtime built by another test of this binary may have set the hint
        // that follows the first line.
        assert!(
            err.starts_with("coroutine #42 overflowed its stack of 64 KiB\n"),
            "{err}"
        );
        assert!(died_by(status, libc::SIGABRT), "status {status:#x}");
    }

    #[test]
    fn other_faults_reach_previous_handler() {
        let (status, err) = in_child(|| {
            install();
            let stack = Stack::new(64 << 10).unwrap();
            let info = OverflowInfo::for_stack(&stack, "bystander");
            // SAFETY: `info` lives until the child dies.
            unsafe { enter(&info) };
            // SAFETY: deliberately faults (null write) to kill the child.
            unsafe { ptr::write_volatile(std::hint::black_box(ptr::null_mut::<u8>()), 1) };
        });
        assert!(died_by(status, libc::SIGSEGV), "status {status:#x}");
        assert_eq!(err, "");
    }

    #[test]
    fn thread_overflow_still_reported_by_std() {
        let (status, err) = in_child(|| {
            install();
            // std's handler knows this thread's guard page and aborts.
            recurse(0);
        });
        assert!(err.contains("has overflowed its stack"), "stderr: {err}");
        assert!(died_by(status, libc::SIGABRT), "status {status:#x}");
    }

    #[test]
    fn ensure_altstack_creates_one_once() {
        std::thread::spawn(|| {
            // SAFETY: only queries this thread's altstack into a local.
            let query = || unsafe {
                let mut cur: libc::stack_t = std::mem::zeroed();
                libc::sigaltstack(ptr::null(), &mut cur);
                cur
            };
            // SAFETY: disabling the altstack std gave this thread.
            unsafe { disable_altstack() };
            assert_ne!(query().ss_flags & libc::SS_DISABLE, 0);
            ensure_altstack().unwrap();
            let first = query();
            assert_eq!(first.ss_flags & libc::SS_DISABLE, 0);
            assert!(first.ss_size >= ALTSTACK_SIZE);
            ensure_altstack().unwrap();
            assert_eq!(query().ss_sp, first.ss_sp);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn names_are_truncated_on_char_boundaries() {
        let long = "é".repeat(40);
        let info = OverflowInfo::new((0, 4096), 8, &long);
        assert_eq!(info.name(), "é".repeat(NAME_MAX / 2));
        let mut info = OverflowInfo::new((0, 4096), 8, "x");
        info.set_id(u64::MAX);
        assert_eq!(info.name(), "#18446744073709551615");
        assert!(info.covers(0, 4096) && !info.covers(4096, 4096));
    }

    #[test]
    #[ignore = "timing report; run with --release --ignored --nocapture"]
    fn timings() {
        let info = OverflowInfo::new((0, 4096), 64, "bench");
        let n = 10_000_000;
        let t = Instant::now();
        for _ in 0..n {
            // SAFETY: `info` outlives the loop; `leave` follows each enter.
            unsafe { enter(std::hint::black_box(&info)) };
            leave();
        }
        println!(
            "enter+leave: {:.2} ns",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
