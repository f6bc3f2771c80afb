//! `CORUN_DUMP_ON_SIGQUIT=1`: a SIGQUIT (Ctrl-\) prints every runtime's dump to
//! stderr, as a Go program prints its goroutines, and the process goes on.
//!
//! The handler only writes a byte to a non-blocking pipe (async-signal-safe); a
//! sysmon reads the pipe on its rounds (at most 10 ms apart) and bumps a generation
//! count, and each runtime's sysmon prints its dump when it sees a new generation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The pipe's read end, once the handler is installed.
static PIPE_READ: OnceLock<libc::c_int> = OnceLock::new();
/// SIGQUITs seen by some sysmon so far.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Installs the handler if `CORUN_DUMP_ON_SIGQUIT=1` (once per process).
pub(crate) fn install_from_env() {
    if std::env::var("CORUN_DUMP_ON_SIGQUIT").as_deref() != Ok("1") {
        return;
    }
    PIPE_READ.get_or_init(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            eprintln!(
                "corun: CORUN_DUMP_ON_SIGQUIT: no pipe for the handler ({}); SIGQUIT keeps its default action",
                std::io::Error::last_os_error()
            );
            return -1;
        }
        let write_end = fds[1];
        let handler = move || {
            // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN) only means
            // a dump is already pending.
            unsafe { libc::write(write_end, [1u8].as_ptr().cast(), 1) };
        };
        // SAFETY: the handler calls only write(2) on a descriptor that stays open for
        // the life of the process; it allocates nothing and takes no lock.
        if let Err(e) = unsafe { signal_hook_registry::register(libc::SIGQUIT, handler) } {
            eprintln!("corun: CORUN_DUMP_ON_SIGQUIT: cannot handle SIGQUIT: {e}");
            return -1;
        }
        fds[0]
    });
}

/// Sysmon's look: drains the pipe; returns the generation this runtime should have
/// printed up to (print a dump if it is above `seen`).
pub(crate) fn generation() -> u64 {
    if let Some(&fd) = PIPE_READ.get() {
        if fd >= 0 {
            let mut buf = [0u8; 64];
            // SAFETY: `buf` is writable for its length; `fd` is our pipe's read end,
            // non-blocking and open for the life of the process.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                GENERATION.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    GENERATION.load(Ordering::SeqCst)
}
