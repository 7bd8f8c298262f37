//! One lock per document id, held by whatever writes or deletes that document (an upload, a
//! worker's file, a delete). Without it, a delete between an upload's store write and its
//! publish left searchable points with no document, and two uploads of the same name at once
//! could leave both versions' points searchable.
//!
//! Two levels: a lock in this process (tasks of one server wait for each other without asking
//! the store), then, where other processes write the same documents (Postgres, with replicas
//! and `verity worker` processes), a lease in the store's `document_locks` table, renewed
//! while held and taken over once it runs out if its holder died. SQLite needs no lease: one
//! process at a time opens a data directory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::OwnedMutexGuard;
use verity_core::VerityResult;
use verity_store::Store;

/// How long a lease lasts unless renewed; renewed at a third of it while held.
const LEASE: Duration = Duration::from_secs(60);
/// How often a lease held by another process is asked for again.
const RETRY: Duration = Duration::from_millis(100);

#[derive(Default, Clone)]
pub(crate) struct DocumentLocks {
    local: Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>,
    /// The store's leases, where other processes write the same documents.
    shared: Option<Store>,
}

/// A document's lock, held until dropped.
pub(crate) struct DocumentGuard {
    _local: OwnedMutexGuard<()>,
    lease: Option<HeldLease>,
}

struct HeldLease {
    store: Store,
    document_id: String,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.renewal.abort();
            // Given back at once, not left to run out; if the store cannot be reached, the
            // lease runs out on its own.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(error) = lease
                        .store
                        .release_document_lease(&lease.document_id, &lease.holder)
                        .await
                    {
                        tracing::warn!(%error, document = %lease.document_id, "cannot give a document's write lease back; it runs out in a minute");
                    }
                });
            }
        }
    }
}

fn in_ms(from_now: Duration) -> i64 {
    (SystemTime::now() + from_now)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl DocumentLocks {
    /// Locks shared with other processes through `store`'s leases.
    pub(crate) fn shared(store: Store) -> Self {
        Self {
            local: Arc::default(),
            shared: Some(store),
        }
    }

    /// Waits for the document's lock; it is held until the guard is dropped.
    pub(crate) async fn lock(&self, document_id: &str) -> VerityResult<DocumentGuard> {
        let local = self.local_lock(document_id).lock_owned().await;
        let lease = match &self.shared {
            Some(store) => Some(take_lease(store, document_id).await?),
            None => None,
        };
        Ok(DocumentGuard {
            _local: local,
            lease,
        })
    }

    fn local_lock(&self, document_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.local.lock().expect("not poisoned");
        // Only locks held or awaited right now are kept: the map stays as small as the number
        // of documents being written at once.
        locks.retain(|_, lock| lock.strong_count() > 0);
        match locks.get(document_id).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(document_id.to_string(), Arc::downgrade(&lock));
                lock
            }
        }
    }
}

/// Waits for the store's lease of the document, then keeps renewing it until released. Each
/// taking has its own holder id, so that a release still on its way cannot remove the next
/// holder's lease.
async fn take_lease(store: &Store, document_id: &str) -> VerityResult<HeldLease> {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    while !store
        .try_lease_document(document_id, &holder, in_ms(LEASE))
        .await?
    {
        tokio::time::sleep(RETRY).await;
    }
    let renewal = tokio::spawn({
        let (store, document_id, holder) = (store.clone(), document_id.to_string(), holder.clone());
        async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                match store
                    .try_lease_document(&document_id, &holder, in_ms(LEASE))
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(document = %document_id, "a document's write lease ran out while it was written and was taken over");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, document = %document_id, "cannot renew a document's write lease")
                    }
                }
            }
        }
    });
    Ok(HeldLease {
        store: store.clone(),
        document_id: document_id.to_string(),
        holder,
        renewal,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_document_is_written_by_one_task_at_a_time_and_others_are_not_held_up() {
        let locks = DocumentLocks::default();
        let held = locks.lock("doc-a").await.unwrap();
        // Another document's lock is free.
        let other = tokio::time::timeout(Duration::from_millis(100), locks.lock("doc-b")).await;
        assert!(other.as_ref().is_ok_and(|guard| guard.is_ok()));
        drop(other);
        // The same document's waits until the first is released.
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("doc-a").await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Nothing is kept once no one holds or awaits a lock.
        let _ = locks.lock("doc-c").await;
        assert!(locks.local.lock().unwrap().len() <= 1);
    }

    /// Two processes on one store (two `DocumentLocks` with their own local locks): the
    /// second waits for the first's lease, and takes it once it is given back.
    #[tokio::test]
    async fn a_document_written_by_another_process_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("verity.sqlite3"))
            .await
            .unwrap();
        let server = DocumentLocks::shared(store.clone());
        let worker = DocumentLocks::shared(store);
        let held = server.lock("doc-a").await.unwrap();
        let waiting = tokio::spawn({
            let worker = worker.clone();
            async move { worker.lock("doc-a").await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !waiting.is_finished(),
            "the other process wrote the document at the same time"
        );
        // Another document is not held up.
        let other = tokio::time::timeout(Duration::from_secs(5), worker.lock("doc-b")).await;
        assert!(other.is_ok_and(|guard| guard.is_ok()));
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the lease was given back")
            .unwrap()
            .unwrap();
    }
}
