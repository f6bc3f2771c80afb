//! Synchronisation primitives whose waiters park: a waiting coroutine frees its worker
//! thread for other coroutines, a waiting plain thread blocks. Coroutines and threads
//! may share every primitive here.
//!
//! - [`Mutex`] (with Go's fairness: a waiter that waited more than about 1 ms is handed
//!   the lock), [`RwLock`] (writer-preferring, as Go's `RWMutex`), [`Condvar`];
//! - [`Semaphore`], [`WaitGroup`] (Go's), [`Barrier`];
//! - [`OnceLock`] (also named [`OnceCell`]): one-time initialisation whose waiters park.
//!
//! None of them poisons: a panic while holding a lock releases it. A coroutine
//! cancelled while it holds a lock releases it as its guard drops during the unwind; a
//! coroutine cancelled while it waits leaves the queue and passes on whatever was
//! handed to it.
//!
//! ```
//! use corun::sync::{Mutex, WaitGroup};
//! use std::sync::Arc;
//!
//! let total = Arc::new(Mutex::new(0));
//! let wg = WaitGroup::new();
//! for i in 1..=10 {
//!     wg.add(1);
//!     let (total, wg) = (total.clone(), wg.clone());
//!     corun::go!(move || {
//!         *total.lock() += i;
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! assert_eq!(*total.lock(), 55);
//! ```

mod barrier;
mod condvar;
mod mutex;
mod once;
mod rwlock;
mod sema;
mod semaphore;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::{OnceCell, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;
