//! One lock per document id, held by whatever writes or deletes that document in this process
//! (an upload, a worker's file, a delete). Without it, a delete between an upload's store write
//! and its publish left searchable points with no document, and two uploads of the same name
//! at once could leave both versions' points searchable.
//!
//! A process-local lock: on Postgres with `verity worker` processes elsewhere, their writes
//! are not serialised with this server's deletes (a worker re-ingesting a path the API deletes
//! at the same moment); `verity reconcile` repairs what such a race leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

#[derive(Debug, Default, Clone)]
pub(crate) struct DocumentLocks(Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>);

impl DocumentLocks {
    /// Waits for the document's lock; it is held until the guard is dropped.
    pub(crate) async fn lock(&self, document_id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().expect("not poisoned");
            // Only locks held or awaited right now are kept: the map stays as small as the
            // number of documents being written at once.
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(document_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(document_id.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_document_is_written_by_one_task_at_a_time_and_others_are_not_held_up() {
        let locks = DocumentLocks::default();
        let held = locks.lock("doc-a").await;
        // Another document's lock is free.
        let other = tokio::time::timeout(Duration::from_millis(100), locks.lock("doc-b")).await;
        assert!(other.is_ok());
        drop(other);
        // The same document's waits until the first is released.
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("doc-a").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        // Nothing is kept once no one holds or awaits a lock.
        let _ = locks.lock("doc-c").await;
        assert!(locks.0.lock().unwrap().len() <= 1);
    }
}
