//! TEMPORARY shim (replaced by the loom shim module).
pub(crate) mod sync {
    pub(crate) use parking_lot::{Condvar as PlCondvar, Mutex, MutexGuard};
    pub(crate) use std::sync::Arc;
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };
    }
    pub(crate) struct Condvar(PlCondvar);
    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(PlCondvar::new())
        }
        pub(crate) fn wait<T>(&self, g: &mut MutexGuard<'_, T>) {
            self.0.wait(g)
        }
        pub(crate) fn wait_timeout<T>(
            &self,
            g: &mut MutexGuard<'_, T>,
            d: std::time::Duration,
        ) -> bool {
            self.0.wait_for(g, d).timed_out()
        }
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
