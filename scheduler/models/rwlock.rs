//! Model check of the reader-writer lock with loom: a reader racing a writer.

use super::super::sema::loom_tests::LoomPark;
use super::*;
use crate::loom::sync::Arc;

#[test]
fn rwlock_reader_and_writer() {
    loom::model(|| {
        let l = Arc::new(RawRwLock::<LoomPark<false>>::new());
        let l2 = l.clone();
        let t = loom::thread::spawn(move || {
            l2.write();
            l2.write_unlock();
        });
        l.read();
        l.read_unlock();
        t.join().unwrap();
        assert!(l.try_write());
        l.write_unlock();
    });
}
