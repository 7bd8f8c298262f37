//! Batch ingestion: read → parse → chunk → embed → store → index, one document at a time for
//! the bookkeeping, many documents at a time for the embedding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use verity_core::{
    Chunk, IndexedChunk, ParsedDocument, VerityError, VerityResult, document_id,
    validate_collection_name,
};
use verity_ingest::{collect_files, content_hash, detect_format, embedding_text, parse_bytes};
use verity_store::DocumentRecord;

use crate::app::Verity;

/// Chunks gathered (across documents) before one embedding run: large enough for efficient,
/// length-sorted batches, small enough that documents become searchable soon.
const CHUNKS_PER_EMBEDDING_RUN: usize = 256;

/// A file that could not be ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub source: String,
    pub reason: String,
}

/// The summary `verity ingest --json` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub documents_added: usize,
    pub documents_updated: usize,
    pub documents_unchanged: usize,
    pub documents_removed: usize,
    pub documents_failed: usize,
    pub chunks_embedded: usize,
    pub failures: Vec<Failure>,
}

impl IngestReport {
    fn fail(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.documents_failed += 1;
        self.failures.push(Failure {
            source: source.into(),
            reason: reason.into(),
        });
    }
}

/// What happened to one file, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Added,
    Updated,
    Unchanged,
    Removed,
    Failed,
}

/// Progress callbacks: `total` once, then one `done` per file.
pub trait IngestProgress: Sync {
    fn total(&self, _files: usize) {}
    fn done(&self, _source: &str, _outcome: FileOutcome) {}
}

/// No progress display.
pub struct Quiet;
impl IngestProgress for Quiet {}

/// A document read and parsed, not yet chunked.
#[derive(Debug, Clone)]
pub struct SourceDocument {
    pub source: String,
    pub content_hash: String,
    pub parsed: ParsedDocument,
}

struct Pending {
    record: DocumentRecord,
    chunks: Vec<Chunk>,
    is_update: bool,
}

#[derive(Default)]
struct Batch {
    documents: Vec<Pending>,
    chunks: usize,
}

impl Verity {
    /// Ingests files and directories into `collection`. Files that cannot be read are reported
    /// in the result and the batch goes on; only a failing store or index stops it.
    pub async fn ingest_paths(
        &self,
        paths: &[PathBuf],
        collection: &str,
        prune: bool,
        progress: &dyn IngestProgress,
    ) -> VerityResult<IngestReport> {
        validate_collection_name(collection)?;
        let mut report = IngestReport::default();
        let (files, unreadable) = collect_files(paths);
        progress.total(files.len() + unreadable.len());
        for (source, reason) in unreadable {
            progress.done(&source, FileOutcome::Failed);
            report.fail(source, reason);
        }
        self.store.ensure_collection(collection).await?;

        let mut batch = Batch::default();
        for file in &files {
            match self
                .read_if_changed(collection, &file.path, &file.source)
                .await?
            {
                Ok(Some(document)) => self.stage(collection, document, &mut batch).await?,
                Ok(None) => {
                    report.documents_unchanged += 1;
                    progress.done(&file.source, FileOutcome::Unchanged);
                }
                Err(reason) => {
                    progress.done(&file.source, FileOutcome::Failed);
                    report.fail(&file.source, reason);
                }
            }
            if batch.chunks >= CHUNKS_PER_EMBEDDING_RUN {
                self.flush(collection, &mut batch, &mut report, progress)
                    .await?;
            }
        }
        self.flush(collection, &mut batch, &mut report, progress)
            .await?;

        if prune {
            self.prune(collection, &mut report, progress).await?;
        }
        self.index.optimize().await?;
        Ok(report)
    }

    /// Ingests documents that are already parsed (the SQuAD evaluation uses this).
    pub async fn ingest_documents(
        &self,
        collection: &str,
        documents: Vec<SourceDocument>,
    ) -> VerityResult<IngestReport> {
        validate_collection_name(collection)?;
        self.store.ensure_collection(collection).await?;
        let mut report = IngestReport::default();
        let mut batch = Batch::default();
        for document in documents {
            let id = document_id(collection, &document.source);
            if self.is_unchanged(&id, &document.content_hash).await? {
                report.documents_unchanged += 1;
                continue;
            }
            self.stage(collection, document, &mut batch).await?;
            if batch.chunks >= CHUNKS_PER_EMBEDDING_RUN {
                self.flush(collection, &mut batch, &mut report, &Quiet)
                    .await?;
            }
        }
        self.flush(collection, &mut batch, &mut report, &Quiet)
            .await?;
        self.index.optimize().await?;
        Ok(report)
    }

    /// Removes a collection's documents from the index and the store, then the collection.
    pub async fn delete_collection(&self, collection: &str) -> VerityResult<usize> {
        let documents = self.store.documents_in_collection(collection).await?;
        for document in &documents {
            self.index.delete_document_chunks(&document.id, &[]).await?;
        }
        self.store.delete_collection(collection).await?;
        Ok(documents.len())
    }

    async fn is_unchanged(&self, document_id: &str, hash: &str) -> VerityResult<bool> {
        Ok(self
            .store
            .document_state(document_id)
            .await?
            .is_some_and(|s| {
                s.active && s.content_hash == hash && s.pipeline == self.pipeline_fingerprint()
            }))
    }

    /// Reads a file. `Ok(Ok(None))`: unchanged since the last ingest; `Ok(Err(reason))`: the
    /// file cannot be ingested; `Err`: the store failed.
    async fn read_if_changed(
        &self,
        collection: &str,
        path: &Path,
        source: &str,
    ) -> VerityResult<Result<Option<SourceDocument>, String>> {
        let format = match detect_format(path) {
            Ok(format) => format,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Err(format!("cannot read file: {e}"))),
        };
        let hash = content_hash(&bytes);
        if self
            .is_unchanged(&document_id(collection, source), &hash)
            .await?
        {
            return Ok(Ok(None));
        }
        let fallback_title = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| source.to_string());
        Ok(parse_bytes(&bytes, format, &fallback_title)
            .map(|parsed| {
                Some(SourceDocument {
                    source: source.to_string(),
                    content_hash: hash,
                    parsed,
                })
            })
            .map_err(|e| e.to_string()))
    }

    async fn stage(
        &self,
        collection: &str,
        document: SourceDocument,
        batch: &mut Batch,
    ) -> VerityResult<()> {
        let id = document_id(collection, &document.source);
        let is_update = self.store.document_state(&id).await?.is_some();
        let chunks = self.chunker.chunk(&id, &document.parsed);
        batch.chunks += chunks.len();
        batch.documents.push(Pending {
            record: DocumentRecord {
                id,
                collection: collection.to_string(),
                source: document.source,
                title: document.parsed.title,
                format: document.parsed.format.as_str().to_string(),
                content_hash: document.content_hash,
                pipeline: self.pipeline_fingerprint(),
                text: document.parsed.text,
            },
            chunks,
            is_update,
        });
        Ok(())
    }

    /// Embeds the batch's chunks in one run, then writes each document: store first (as
    /// `indexing`), then the index (new chunks in, stale chunks out), then `active`.
    async fn flush(
        &self,
        collection: &str,
        batch: &mut Batch,
        report: &mut IngestReport,
        progress: &dyn IngestProgress,
    ) -> VerityResult<()> {
        let documents = std::mem::take(&mut batch.documents);
        batch.chunks = 0;
        if documents.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = documents
            .iter()
            .flat_map(|d| d.chunks.iter().map(|c| embedding_text(&d.record.title, c)))
            .collect();
        let embedder = Arc::clone(&self.embedder);
        let embedded = tokio::task::spawn_blocking(move || embedder.embed_passages(&texts))
            .await
            .map_err(|e| VerityError::internal("embed", e))?;
        let vectors = match embedded {
            Ok(vectors) => vectors,
            Err(e) => {
                for document in documents {
                    progress.done(&document.record.source, FileOutcome::Failed);
                    report.fail(document.record.source, format!("embedding failed: {e}"));
                }
                return Ok(());
            }
        };

        let mut vectors = vectors.into_iter();
        for document in documents {
            let Pending {
                record,
                chunks,
                is_update,
            } = document;
            self.store.write_document(&record, &chunks).await?;
            let keep: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
            let indexed: Vec<IndexedChunk> = chunks
                .into_iter()
                .zip(vectors.by_ref())
                .map(|(chunk, vector)| IndexedChunk {
                    collection: collection.to_string(),
                    title: record.title.clone(),
                    source: record.source.clone(),
                    chunk,
                    vector,
                })
                .collect();
            self.index.upsert(&indexed).await?;
            self.index.delete_document_chunks(&record.id, &keep).await?;
            self.store.mark_active(&record.id).await?;

            report.chunks_embedded += indexed.len();
            let outcome = if is_update {
                report.documents_updated += 1;
                FileOutcome::Updated
            } else {
                report.documents_added += 1;
                FileOutcome::Added
            };
            progress.done(&record.source, outcome);
        }
        Ok(())
    }

    /// Removes the collection's documents whose files no longer exist. Index first: a crash
    /// in between leaves a document the next prune removes, never a chunk without a document.
    async fn prune(
        &self,
        collection: &str,
        report: &mut IngestReport,
        progress: &dyn IngestProgress,
    ) -> VerityResult<()> {
        for document in self.store.documents_in_collection(collection).await? {
            if Path::new(&document.source).exists() {
                continue;
            }
            self.index.delete_document_chunks(&document.id, &[]).await?;
            self.store.delete_document(&document.id).await?;
            report.documents_removed += 1;
            progress.done(&document.source, FileOutcome::Removed);
        }
        Ok(())
    }
}
