//! TEMPORARY run queue stand-in.
use super::inject::Inject;
use crossbeam_deque::{Steal as S, Stealer, Worker};
const CAP: usize = 256;
pub(crate) struct Local<T>(Worker<T>);
pub(crate) struct Steal<T>(Stealer<T>);
impl<T> Clone for Steal<T> {
    fn clone(&self) -> Self {
        Steal(self.0.clone())
    }
}
pub(crate) fn local<T: Send>() -> (Local<T>, Steal<T>) {
    let w = Worker::new_fifo();
    let s = w.stealer();
    (Local(w), Steal(s))
}
impl<T: Send> Local<T> {
    pub(crate) fn push_back_or_overflow(&mut self, t: T, inject: &Inject<T>) {
        if self.0.len() >= CAP {
            let mut v = Vec::new();
            for _ in 0..CAP / 2 {
                if let Some(x) = self.0.pop() {
                    v.push(x)
                }
            }
            v.push(t);
            inject.push_batch(v.into_iter());
        } else {
            self.0.push(t)
        }
    }
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
impl<T: Send> Steal<T> {
    pub(crate) fn steal_into(&self, dst: &mut Local<T>) -> Option<T> {
        loop {
            match self.0.steal_batch_and_pop(&dst.0) {
                S::Success(t) => return Some(t),
                S::Empty => return None,
                S::Retry => continue,
            }
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
