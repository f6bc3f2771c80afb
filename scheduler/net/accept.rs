//! `accept` for both listener types, with the retry timer a listener needs after it
//! ran out of file descriptors.

use crate::netpoll::readiness::Dir;
use crate::netpoll::source::IoSource;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a listener that ran out of file descriptors waits before it tries
/// `accept` again: no new edge comes for connections already queued.
const EMFILE_RETRY: Duration = Duration::from_millis(20);

/// Runs `accept` (the `std` listener's), waiting for readiness unless `nonblocking`.
/// `EMFILE`/`ENFILE` is returned to the caller and sets `starved`; while it is set,
/// waits also end every 20 ms to try again, until an attempt finds the queue empty
/// (a new connection brings an edge again) or succeeds.
pub(crate) fn accept<T>(
    io: &IoSource,
    starved: &AtomicBool,
    nonblocking: bool,
    mut accept: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        let was_starved = starved.load(Ordering::Relaxed);
        let deadline = was_starved.then(|| Instant::now() + EMFILE_RETRY);
        let r = if nonblocking {
            accept()
        } else {
            io.io(Dir::Read, deadline, &mut accept)
        };
        match r {
            Ok(v) => {
                if was_starved {
                    starved.store(false, Ordering::Relaxed);
                }
                return Ok(v);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                starved.store(true, Ordering::Relaxed);
                return Err(e);
            }
            Err(e) if was_starved && !nonblocking && e.kind() == io::ErrorKind::WouldBlock => {
                // The retry timer fired and the queue was empty at the last
                // attempt: a new connection will bring an edge again, so stop
                // polling every 20 ms.
                starved.store(false, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
}
