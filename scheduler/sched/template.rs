//! Where corun makes its threads (Go's template thread).
//!
//! A thread inherits namespaces, credentials and its signal mask from the thread
//! that creates it. A dedicated coroutine owns its thread and may change all three
//! (`Builder::dedicated_thread`), so corun never creates a thread of its own (a
//! worker, a blocking-pool thread, another dedicated thread) from one: such a
//! request goes to the template thread, started from a thread corun has not handed
//! to anyone, before the first dedicated thread exists, and then only waits.

use std::io;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

type Body = Box<dyn FnOnce() + Send>;
type Reply = mpsc::SyncSender<io::Result<thread::JoinHandle<()>>>;
type Request = (String, Body, Reply);

/// Requests to the template thread: a thread's name and body, where to answer.
/// Set only once the template thread runs.
static TEMPLATE: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

thread_local! {
    /// Whether this thread belongs to a dedicated coroutine.
    static DEDICATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts the template thread if it does not run yet. Called before the first
/// dedicated thread is made, so never from one.
pub(super) fn ensure_started() -> io::Result<()> {
    let mut template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if template.is_some() {
        return Ok(());
    }
    debug_assert!(!is_dedicated());
    let (tx, rx) = mpsc::channel::<Request>();
    thread::Builder::new()
        .name("corun-template".into())
        .spawn(move || loop {
            // Idle while it waits, so that deadlock detection accounts for it.
            let idle = super::deadlock::Asleep::enter();
            let Ok((name, body, reply)) = rx.recv() else {
                return;
            };
            drop(idle);
            #[cfg(test)]
            tests::SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The requester waits for the answer; if it is gone, so be it.
            let _ = reply.send(thread::Builder::new().name(name).spawn(body));
        })?;
    // Only a running template is recorded: a failed start is tried again later.
    *template = Some(tx);
    Ok(())
}

/// Marks the calling thread as a dedicated coroutine's, for the rest of its life.
pub(super) fn mark_dedicated() {
    DEDICATED.with(|d| d.set(true));
}

fn is_dedicated() -> bool {
    DEDICATED.with(|d| d.get())
}

/// Starts a thread named `name` running `body`: here, or through the template
/// thread when called from a dedicated thread.
pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
    name: String,
    body: F,
) -> io::Result<thread::JoinHandle<()>> {
    if !is_dedicated() {
        return thread::Builder::new().name(name).spawn(body);
    }
    let gone = || {
        io::Error::other(
            "corun's template thread has exited, so no thread can be made from a dedicated thread",
        )
    };
    let (reply, answer) = mpsc::sync_channel(1);
    {
        // Held only to send; a poisoned lock still holds a valid sender.
        let template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
        let tx = template.as_ref().ok_or_else(gone)?;
        tx.send((name, Box::new(body), reply)).map_err(|_| gone())?;
    }
    // This blocks the dedicated thread, which runs nothing else.
    answer.recv().map_err(|_| gone())?
}

/// Runs `f` here, or on a thread the template makes when called from a dedicated
/// thread (for libraries that make threads of their own, such as tokio's builder),
/// and returns its result.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio bridge
pub(crate) fn run_clean<R: Send + 'static>(
    name: String,
    f: impl FnOnce() -> R + Send + 'static,
) -> io::Result<R> {
    if !is_dedicated() {
        return Ok(f());
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let t = spawn(name, move || {
        let _ = tx.send(f());
    })?;
    let r = rx.recv();
    let _ = t.join();
    r.map_err(|_| io::Error::other("a thread made by corun's template thread panicked"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) static SERVED: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn a_dedicated_thread_makes_its_threads_through_the_template() {
        super::ensure_started().unwrap();
        let before = SERVED.load(Ordering::Relaxed);
        std::thread::spawn(|| {
            super::mark_dedicated();
            let h = super::spawn("made-by-template".into(), || {
                assert!(!super::is_dedicated());
            });
            h.unwrap().join().unwrap();
        })
        .join()
        .unwrap();
        assert!(SERVED.load(Ordering::Relaxed) > before);
    }
}
