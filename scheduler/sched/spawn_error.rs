//! [`SpawnError`]: a coroutine that could not start because its stack could not be
//! mapped (the core finds out when it first runs the coroutine).

use super::task::Header;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a coroutine could not start: the payload of its `join()` error.
///
/// ```no_run
/// let h = corun::spawn(|| ());
/// if let Err(e) = h.join() {
///     if let Some(se) = e.downcast_ref::<corun::SpawnError>() {
///         eprintln!("{se}");
///     }
/// }
/// ```
#[derive(Debug)]
pub struct SpawnError {
    coroutine: String,
    cause: io::Error,
}

impl SpawnError {
    pub(crate) fn stack(h: &Header, cause: io::Error) -> SpawnError {
        SpawnError {
            coroutine: h.label(),
            cause,
        }
    }

    /// The OS error behind it.
    pub fn cause(&self) -> &io::Error {
        &self.cause
    }

    pub(super) fn warn_once(&self) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("corun: {self} (warned once; the coroutine's join() returns this error)");
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coroutine {} could not start: mapping its stack failed: {}; lower the live coroutine count or stack size, \
             or raise the address space limit or the `vm.max_map_count` sysctl",
            self.coroutine, self.cause
        )
    }
}

impl std::error::Error for SpawnError {}
