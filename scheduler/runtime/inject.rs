//! TEMPORARY injector stand-in.
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use std::collections::VecDeque;
pub(crate) struct Inject<T> {
    q: Mutex<VecDeque<T>>,
    len: AtomicUsize,
    closed: AtomicBool,
}
impl<T> Inject<T> {
    pub(crate) fn new() -> Self {
        Inject {
            q: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }
    pub(crate) fn push(&self, t: T) -> Result<(), T> {
        let mut q = self.q.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(t);
        }
        q.push_back(t);
        self.len.store(q.len(), Ordering::Release);
        Ok(())
    }
    pub(crate) fn push_batch(&self, it: impl Iterator<Item = T>) {
        let mut q = self.q.lock();
        q.extend(it);
        self.len.store(q.len(), Ordering::Release);
    }
    pub(crate) fn pop(&self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let mut q = self.q.lock();
        let t = q.pop_front();
        self.len.store(q.len(), Ordering::Release);
        t
    }
    pub(crate) fn pop_n(&self, n: usize, mut f: impl FnMut(T)) {
        if self.is_empty() {
            return;
        }
        let mut q = self.q.lock();
        for _ in 0..n {
            match q.pop_front() {
                Some(t) => f(t),
                None => break,
            }
        }
        self.len.store(q.len(), Ordering::Release);
    }
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn close(&self) {
        let _q = self.q.lock();
        self.closed.store(true, Ordering::Relaxed);
    }
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}
