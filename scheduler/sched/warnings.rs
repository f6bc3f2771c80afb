//! Where sysmon's warnings go, and how often.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a runtime's warnings go (a coroutine that held its worker: see
/// [`RuntimeBuilder::warnings`](crate::RuntimeBuilder::warnings)). Each event is
/// counted in [`Metrics`](crate::Metrics) whatever the route.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let rt = corun::Runtime::builder()
///     .warnings(corun::Warnings::Callback(Arc::new(move |line: &str| {
///         log.lock().unwrap().push(line.to_owned());
///     })))
///     .build()
///     .unwrap();
/// # drop(rt);
/// ```
#[derive(Clone, Default)]
pub enum Warnings {
    /// None at all.
    Off,
    /// One line each on stderr, starting with `corun:` (the default).
    #[default]
    Stderr,
    /// Each line is handed to the callback, on sysmon's thread, with no scheduler
    /// lock held. It must return quickly and must not block: sysmon waits for it.
    /// If it panics, the warnings go to stderr from then on.
    Callback(Arc<dyn Fn(&str) + Send + Sync>),
}

impl std::fmt::Debug for Warnings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Warnings::Off => "Off",
            Warnings::Stderr => "Stderr",
            Warnings::Callback(_) => "Callback(..)",
        })
    }
}

/// A route with its rate limit: at most one line a second; the first held back is
/// given when the second is over, with how many more there were.
pub(crate) struct Route {
    to: Warnings,
    last: Option<Instant>,
    pending: Option<String>,
    held_back: u64,
}

impl Route {
    const EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn new(to: Warnings) -> Route {
        Route {
            to,
            last: None,
            pending: None,
            held_back: 0,
        }
    }

    /// Whether lines go anywhere (no need to compose them otherwise).
    pub(super) fn is_on(&self) -> bool {
        !matches!(self.to, Warnings::Off)
    }

    fn recent(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
    }

    pub(crate) fn say(&mut self, now: Instant, line: String) {
        if self.recent(now) {
            match self.pending {
                None => self.pending = Some(line),
                Some(_) => self.held_back += 1,
            }
            return;
        }
        self.last = Some(now);
        self.give(&line);
    }

    /// Gives what was held back, once its second is over.
    pub(super) fn flush(&mut self, now: Instant) {
        if self.recent(now) {
            return;
        }
        if let Some(line) = self.pending.take() {
            self.last = Some(now);
            match std::mem::take(&mut self.held_back) {
                0 => self.give(&line),
                n => self.give(&format!(
                    "{line} ({n} more such warnings held back in the last second.)"
                )),
            }
        }
    }

    fn give(&mut self, line: &str) {
        use std::io::Write;
        match &self.to {
            Warnings::Off => {}
            // Not `eprintln!`: a closed stderr must not take sysmon down.
            Warnings::Stderr => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            Warnings::Callback(f) => {
                let f = f.clone();
                let call = std::panic::AssertUnwindSafe(|| f(line));
                if std::panic::catch_unwind(call).is_err() {
                    // sysmon must go on: the rest go to stderr.
                    self.to = Warnings::Stderr;
                    let _ = writeln!(
                        std::io::stderr(),
                        "corun: the warnings callback panicked; warnings go to stderr now\n{line}"
                    );
                }
            }
        }
    }
}
