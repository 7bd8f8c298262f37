//! `verity reconcile`: compares the vector index with the metadata store (the source of truth)
//! and repairs the difference — after a crash, a restore from backup, or a lost index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use verity_core::{Caller, IndexedChunk, Language, Scope, VerityError, VerityResult};
use verity_ingest::embedding_text;

use crate::Verity;

/// What `verity reconcile --json` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Chunks of active documents that searches cannot find (absent from the index, or hidden).
    pub missing_in_index: usize,
    /// Points the store does not hold as active chunks (stale versions, deleted or unfinished
    /// documents).
    pub orphans_in_index: usize,
    /// Missing chunks indexed and orphans deleted by this run (0 with `--dry-run`).
    pub repaired: usize,
    /// Documents a crash left half-written (`indexing`): their points are orphans; the next
    /// `verity ingest` of their files writes them again.
    pub documents_incomplete: usize,
}

impl Verity {
    /// Reconciles one collection, or every collection the caller may use: an operator's
    /// (admin) task.
    pub async fn reconcile(
        &self,
        caller: &Caller,
        collection: Option<&str>,
        repair: bool,
    ) -> VerityResult<ReconcileReport> {
        caller.require(Scope::Admin)?;
        let collections = match collection {
            Some(name) => {
                if !caller.may_use_collection(name) || !self.store.collection_exists(name).await? {
                    return Err(VerityError::NotFound {
                        what: "collection",
                        name: name.to_string(),
                    });
                }
                vec![name.to_string()]
            }
            None => {
                let mut all = self.store.list_collections().await?;
                all.retain(|name| caller.may_use_collection(name));
                all
            }
        };
        let mut report = ReconcileReport::default();
        for collection in collections {
            self.reconcile_collection(&collection, repair, &mut report)
                .await?;
        }
        if repair && report.repaired > 0 {
            self.index.optimize().await?;
        }
        Ok(report)
    }

    async fn reconcile_collection(
        &self,
        collection: &str,
        repair: bool,
        report: &mut ReconcileReport,
    ) -> VerityResult<()> {
        let documents = self.store.documents_in_collection(collection).await?;
        report.documents_incomplete += documents.iter().filter(|d| !d.active).count();
        let mut expected: HashMap<String, usize> = HashMap::new();
        let mut chunks_by_document = Vec::new();
        for (i, document) in documents.iter().enumerate().filter(|(_, d)| d.active) {
            let chunks = self.store.chunks_of(&document.id).await?;
            expected.extend(chunks.iter().map(|c| (c.id.clone(), i)));
            chunks_by_document.push((i, chunks));
        }

        let points = self.index.list_points(collection).await?;
        let present: HashSet<&str> = points.iter().map(|p| p.chunk_id.as_str()).collect();
        let orphans: Vec<String> = points
            .iter()
            .filter(|p| !expected.contains_key(&p.chunk_id))
            .map(|p| p.chunk_id.clone())
            .collect();
        let hidden: Vec<&str> = points
            .iter()
            .filter(|p| !p.visible && expected.contains_key(&p.chunk_id))
            .map(|p| p.chunk_id.as_str())
            .collect();
        let absent: HashSet<&str> = expected
            .keys()
            .map(String::as_str)
            .filter(|id| !present.contains(id))
            .collect();
        report.orphans_in_index += orphans.len();
        report.missing_in_index += hidden.len() + absent.len();
        if !repair {
            return Ok(());
        }

        self.index.delete_chunks(&orphans).await?;
        report.repaired += orphans.len();
        // Documents with a missing chunk: index what is absent, then publish the document.
        let mut to_publish: HashSet<usize> = hidden.iter().map(|id| expected[*id]).collect();
        for (i, chunks) in chunks_by_document {
            let document = &documents[i];
            let absent_chunks: Vec<_> = chunks
                .into_iter()
                .filter(|c| absent.contains(c.id.as_str()))
                .collect();
            if absent_chunks.is_empty() {
                continue;
            }
            let texts: Vec<String> = absent_chunks
                .iter()
                .map(|c| embedding_text(&document.title, c))
                .collect();
            let embedder = Arc::clone(&self.embedder);
            let vectors = tokio::task::spawn_blocking(move || embedder.embed_passages(&texts))
                .await
                .map_err(|e| VerityError::internal("embed", e))??;
            let language = Language::from_code(&document.language).unwrap_or(Language::English);
            let indexed: Vec<IndexedChunk> = absent_chunks
                .into_iter()
                .zip(vectors)
                .map(|(chunk, vector)| IndexedChunk {
                    collection: collection.to_string(),
                    title: document.title.clone(),
                    source: document.source.clone(),
                    language,
                    tags: document.tags.clone(),
                    groups: document.groups.clone(),
                    modified: document.modified,
                    chunk,
                    vector,
                })
                .collect();
            self.index.upsert(&indexed).await?;
            to_publish.insert(i);
        }
        for i in to_publish {
            self.index.publish_document(&documents[i].id).await?;
        }
        report.repaired += hidden.len() + absent.len();
        Ok(())
    }
}
