//! OS signals delivered as a channel: Go's `signal.Notify`.
//!
//! ```
//! use std::time::Duration;
//! let sigs = corun::signal::notify(&[libc::SIGUSR1]).unwrap();
//! // SAFETY: raise(3) has no preconditions; SIGUSR1 is caught now, so it does not end the process.
//! unsafe { libc::raise(libc::SIGUSR1) };
//! let got = corun::select! {
//!     recv(sigs) -> sig => sig.unwrap(),
//!     default(Duration::from_secs(10)) => panic!("no signal arrived"),
//! };
//! assert_eq!(got, libc::SIGUSR1);
//! ```
//!
//! How it works: the signal handler, which may run at any instruction of any thread,
//! does only what is async-signal-safe: it adds one to the signal's counter (a
//! lock-free atomic) and writes one byte to a non-blocking self-pipe (a Unix socket
//! pair); if the pipe is full the byte is dropped, and the counter still holds the
//! signal. One coroutine on the default runtime (spawned by the first `notify`)
//! reads the pipe through the netpoller, parked while no signal comes, and sends
//! each counted signal to every channel subscribed to it. A coroutine rather than a
//! thread: the read parks on the poller like any socket read, so signals cost no
//! thread, in keeping with "no thread beyond the workers". It lives on the default
//! runtime because that runtime lives as long as the process, whichever runtime
//! called `notify`.

use crate::chan::{self, Receiver, Sender, TrySendError};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

/// Signal numbers are below this on Linux (`SIGRTMAX` is 64).
const NSIG: usize = 65;
/// Signals a channel holds before further ones for it are dropped.
const BUFFER: usize = 64;

/// Signals that arrived and are not delivered yet, per signal number. Written by the
/// handler, so only lock-free atomics.
static PENDING: [AtomicU32; NSIG] = [const { AtomicU32::new(0) }; NSIG];
/// The write end of the self-pipe (-1 before the first `notify`); open for the life
/// of the process once set.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

struct Subscribers {
    /// (signal, channel) pairs; one `notify` call adds one pair per signal.
    list: Vec<(i32, Sender<i32>)>,
    /// Which signals have our handler installed.
    installed: [bool; NSIG],
    /// Whether the pipe and its reader exist.
    started: bool,
}

static SUBSCRIBERS: Mutex<Subscribers> = Mutex::new(Subscribers {
    list: Vec::new(),
    installed: [false; NSIG],
    started: false,
});

/// Starts relaying the signals in `signals` (numbers such as `libc::SIGINT`) to the
/// returned channel, as Go's `signal.Notify`; usable in [`select!`](crate::select).
///
/// - Every `notify` call whose set contains a signal receives it: overlapping calls
///   each get their own copy.
/// - The channel holds 64 signals; while it is full, further signals for it are
///   dropped (as Go does, a slow receiver never blocks delivery). Signals of one
///   kind that arrive together may be merged by the OS, as always.
/// - Once a signal has been asked for, its default action (such as ending the
///   process on `SIGINT` or `SIGTERM`) no longer happens, for the rest of the
///   process, even after the receiver is dropped.
/// - `SIGKILL` and `SIGSTOP` cannot be caught, and `SIGSEGV`, `SIGBUS`, `SIGILL` and
///   `SIGFPE` report faults (corun's stack-overflow report uses the first two):
///   asking for them is an `InvalidInput` error, as is an empty set.
///
/// ```
/// let both = corun::signal::notify(&[libc::SIGUSR2, libc::SIGWINCH]).unwrap();
/// let one = corun::signal::notify(&[libc::SIGUSR2]).unwrap();
/// // SAFETY: raise(3) has no preconditions; SIGUSR2 is caught now.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// assert_eq!(both.recv().unwrap(), libc::SIGUSR2);
/// assert_eq!(one.recv().unwrap(), libc::SIGUSR2); // both calls receive it
/// assert_eq!(corun::signal::notify(&[libc::SIGKILL]).unwrap_err().kind(),
///            std::io::ErrorKind::InvalidInput);
/// ```
pub fn notify(signals: &[i32]) -> io::Result<Receiver<i32>> {
    if signals.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corun::signal::notify was given no signals: pass the signal numbers to \
             receive, such as libc::SIGINT",
        ));
    }
    for &sig in signals {
        check(sig)?;
    }
    let (tx, rx) = chan::bounded(BUFFER);
    let mut subs = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner());
    if !subs.started {
        start()?;
        subs.started = true;
    }
    // Subscribe before installing, so a signal arriving in between is delivered.
    for &sig in signals {
        if !subs
            .list
            .iter()
            .any(|(s, t)| *s == sig && t.same_channel(&tx))
        {
            subs.list.push((sig, tx.clone()));
        }
    }
    for &sig in signals {
        if !subs.installed[sig as usize] {
            install(sig)?;
            subs.installed[sig as usize] = true;
        }
    }
    Ok(rx)
}

fn check(sig: i32) -> io::Result<()> {
    const FAULTS: [i32; 6] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    if sig <= 0 || sig as usize >= NSIG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{sig} is not a signal number: pass one from 1 to {}",
                NSIG - 1
            ),
        ));
    }
    if FAULTS.contains(&sig) || signal_hook_registry::FORBIDDEN.contains(&sig) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {sig} cannot be received on a channel: SIGKILL and SIGSTOP cannot \
                 be caught, and SIGSEGV, SIGBUS, SIGILL and SIGFPE report faults in the \
                 thread that caused them; ask for another signal"
            ),
        ));
    }
    Ok(())
}

/// Creates the self-pipe and spawns its reader on the default runtime.
fn start() -> io::Result<()> {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("corun::signal::notify could not create its self-pipe: {e}"),
        )
    })?;
    writer.set_nonblocking(true)?;
    let reader = crate::net::UnixStream::from_std(reader)?;
    // The write end stays open for the life of the process: a handler may use it
    // at any moment.
    WAKE_FD.store(writer.into_raw_fd(), Ordering::SeqCst);
    crate::runtime::handle::default_handle().spawn(move || relay(reader));
    Ok(())
}

/// The handler for `sig`, through `signal-hook-registry` (which chains any handler
/// installed before and keeps `errno`).
fn install(sig: i32) -> io::Result<()> {
    let handler = move || {
        PENDING[sig as usize].fetch_add(1, Ordering::SeqCst);
        let fd = WAKE_FD.load(Ordering::SeqCst);
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the self-pipe's write end,
        // open for the life of the process (set before any handler was installed),
        // and `byte` is a live one-byte buffer. A full pipe gives EAGAIN, which is
        // fine: the counter above holds the signal and the reader is already due.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    };
    // SAFETY: the action is async-signal-safe: it touches only lock-free atomics and
    // calls write(2); it allocates nothing, takes no lock and does not panic (the
    // index is below NSIG, checked by `check`).
    unsafe { signal_hook_registry::register(sig, handler) }.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("corun::signal::notify could not install a handler for signal {sig}: {e}"),
        )
    })?;
    Ok(())
}

/// The reader coroutine: waits on the self-pipe, then hands out what is pending.
fn relay(reader: crate::net::UnixStream) {
    let mut buf = [0u8; 256];
    loop {
        match (&reader).read(&mut buf) {
            Ok(0) => return, // cannot happen: the write end is never closed
            Ok(_) => deliver(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!(
                    "corun::signal: reading the self-pipe (fd {}) failed: {e}; \
                     signals will no longer be delivered",
                    reader.as_raw_fd()
                );
                return;
            }
        }
    }
}

fn deliver() {
    for (sig, pending) in PENDING.iter().enumerate().skip(1) {
        let n = pending.swap(0, Ordering::SeqCst);
        if n == 0 {
            continue;
        }
        let sig = sig as i32;
        let mut subs = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner());
        // A dropped receiver unsubscribes its channel.
        subs.list.retain(|(s, tx)| {
            if *s != sig {
                return true;
            }
            for _ in 0..n.min(BUFFER as u32) {
                match tx.try_send(sig) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => break,
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}
