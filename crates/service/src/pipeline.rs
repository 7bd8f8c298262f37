//! Batch ingestion: read → parse → chunk → embed → store → index, one document at a time for
//! the bookkeeping, many documents at a time for the embedding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use verity_core::{
    Caller, Chunk, IndexedChunk, Language, ParsedDocument, Scope, VerityError, VerityResult,
    detect_language, document_id, policy, validate_collection_name, validate_group_name,
};
use verity_ingest::{
    IngestError, ParseLimits, collect_files, collect_files_under, content_hash, embedding_text,
    fallback_title, parse_document, read_file, read_file_under,
};
use verity_store::DocumentRecord;

use crate::Verity;

/// Chunks gathered (across documents) before one embedding run: large enough for efficient,
/// length-sorted batches, small enough that documents become searchable soon.
const CHUNKS_PER_EMBEDDING_RUN: usize = 256;

/// Parsed documents waiting for the embedder, at most: parsing runs this far ahead.
const READ_AHEAD: usize = 16;

/// Points per index write: a document's points reach the index in batches of this size.
const UPSERT_BATCH: usize = 64;

/// A hook for the crash tests: when `VERITY_FAULT_INJECT` names this point, the process is
/// killed with SIGKILL right here — no destructor runs, nothing is flushed, as in a real crash.
/// `point#N` kills the N-th time the point is reached (so earlier files get through).
pub(crate) fn fault_point(name: &str) {
    static FAULT: std::sync::OnceLock<Option<(String, usize)>> = std::sync::OnceLock::new();
    static HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let fault = FAULT.get_or_init(|| {
        let value = std::env::var("VERITY_FAULT_INJECT").ok()?;
        Some(match value.split_once('#') {
            Some((point, n)) => (point.to_string(), n.parse().unwrap_or(1)),
            None => (value, 1),
        })
    });
    let Some((point, nth)) = fault else { return };
    if point != name || HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 != *nth {
        return;
    }
    tracing::warn!(point = name, "VERITY_FAULT_INJECT: killing this process");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` may be missing: abort, which is just as abrupt.
    std::process::abort();
}

/// Reads a document's bytes; `name` is its file name, whose extension says how to read it when
/// the content does not. Parsing runs on its own thread under `limits`: a panic or a timeout
/// fails this document only. Blocks until then (call it off the async workers).
fn parse_named(
    name: &Path,
    bytes: Vec<u8>,
    limits: &ParseLimits,
) -> Result<ParsedDocument, IngestError> {
    parse_document(bytes, name, &fallback_title(name), limits)
}

/// A file that could not be ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub source: String,
    pub reason: FileFailure,
}

/// Why one file was not ingested. The batch goes on without it; only a failing store or index
/// stops a batch (those are [`VerityError`]s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileFailure {
    /// The path does not exist, or cannot be listed.
    #[error("{0}")]
    NotFound(String),
    /// Its bytes cannot be read, or are not a document Verity reads.
    #[error(transparent)]
    Unreadable(#[from] IngestError),
    /// It is stored already with groups the caller may not write: left as it was.
    #[error("{}", policy::overwrite_refused(.document))]
    OverwriteRefused { document: String },
    /// The embedding model failed on its text.
    #[error("embedding failed: {0}")]
    Embedding(String),
}

/// On the wire (`verity ingest --json`, job files) a failure is its message.
impl Serialize for FileFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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
    fn fail(&mut self, source: impl Into<String>, reason: FileFailure) {
        self.documents_failed += 1;
        self.failures.push(Failure {
            source: source.into(),
            reason,
        });
    }

    /// What happened to the one document of a single-document ingest (an upload, a job's file).
    pub fn outcome(&self) -> Result<FileOutcome, FileFailure> {
        match self.failures.first() {
            Some(failure) => Err(failure.reason.clone()),
            None if self.documents_added > 0 => Ok(FileOutcome::Added),
            None if self.documents_updated > 0 => Ok(FileOutcome::Updated),
            None => Ok(FileOutcome::Unchanged),
        }
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

impl FileOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FileOutcome::Added => "added",
            FileOutcome::Updated => "updated",
            FileOutcome::Unchanged => "unchanged",
            FileOutcome::Removed => "removed",
            FileOutcome::Failed => "failed",
        }
    }
}

/// Ingest progress for monitoring: documents by outcome, whoever ingests them (a batch, a
/// worker, an upload).
static INGESTED: std::sync::LazyLock<prometheus::IntCounterVec> = std::sync::LazyLock::new(|| {
    prometheus::register_int_counter_vec!(
        "verity_ingest_documents_total",
        "Documents ingested by this process, by outcome",
        &["outcome"]
    )
    .expect("metric registers once")
});

fn count(outcome: FileOutcome) {
    INGESTED.with_label_values(&[outcome.as_str()]).inc();
}

/// Another progress sink, with every outcome counted in the metrics.
struct Counted<'a>(&'a dyn IngestProgress);

#[async_trait]
impl IngestProgress for Counted<'_> {
    async fn total(&self, files: usize) {
        self.0.total(files).await;
    }

    async fn embedding(&self, source: &str) {
        self.0.embedding(source).await;
    }

    async fn done(&self, source: &str, outcome: FileOutcome) {
        count(outcome);
        self.0.done(source, outcome).await;
    }
}

/// Where a batch's progress goes (a progress bar, an ingest job's rows): `total` once, then
/// one `done` per file, and `embedding` for each file whose chunks go to the embedder (before
/// its `done`). The pipeline awaits each call between its own store writes, so a sink may
/// write to the store too without the two writers meeting (SQLite would call one busy).
#[async_trait]
pub trait IngestProgress: Send + Sync {
    async fn total(&self, _files: usize) {}
    async fn embedding(&self, _source: &str) {}
    async fn done(&self, _source: &str, _outcome: FileOutcome) {}
}

/// No progress display.
pub struct Quiet;
impl IngestProgress for Quiet {}

/// How a document stands against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    New,
    Changed,
    Unchanged,
    /// Stored with groups the writer may not write: left as it is.
    Refused,
}

/// A document read and parsed, not yet chunked.
#[derive(Debug, Clone)]
pub struct SourceDocument {
    pub source: String,
    pub content_hash: String,
    pub parsed: ParsedDocument,
    /// When the file was last modified, in seconds since the Unix epoch.
    pub modified: Option<i64>,
}

/// What `verity ingest` was asked to do besides reading the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    pub collection: String,
    /// Remove the collection's documents whose files no longer exist.
    pub prune: bool,
    /// Tags given to every document of this run (replacing earlier tags).
    pub tags: Vec<String>,
    /// The documents' language; detected per document when `None`.
    pub language: Option<Language>,
    /// Access groups that may read every document of this run (replacing earlier groups);
    /// empty: anyone who may read the collection.
    pub groups: Vec<String>,
    /// Optimise and flush the index at the end (a worker does it once its queue is empty).
    pub optimize: bool,
    /// The caller's groups, set by [`Verity::ingest`]: a document already stored with groups
    /// it may not write ([`verity_core::policy::may_overwrite`]) is refused, not replaced.
    /// `None`: no limit (the operator, the CLI).
    pub(crate) writer: Option<Vec<String>>,
    /// Files must be regular files under this canonical directory when they are opened,
    /// reached through no symbolic link (server-side paths sent over the API: they were
    /// checked when the job was accepted, and are checked again here, on the opened file).
    pub root: Option<PathBuf>,
}

impl IngestOptions {
    pub fn new(collection: impl Into<String>) -> Self {
        Self {
            collection: collection.into(),
            prune: false,
            tags: Vec::new(),
            language: None,
            groups: Vec::new(),
            optimize: true,
            writer: None,
            root: None,
        }
    }

    pub fn with_root(mut self, root: Option<PathBuf>) -> Self {
        self.root = root;
        self
    }

    pub fn with_prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    pub fn with_tags(mut self, tags: Vec<String>) -> Self {
        self.tags = tags;
        self
    }

    pub fn with_groups(mut self, groups: Vec<String>) -> Self {
        self.groups = groups;
        self
    }

    pub fn with_language(mut self, language: Option<Language>) -> Self {
        self.language = language;
        self
    }

    pub fn with_optimize(mut self, optimize: bool) -> Self {
        self.optimize = optimize;
        self
    }

    pub(crate) fn validate(&self) -> VerityResult<()> {
        validate_collection_name(&self.collection)?;
        for group in &self.groups {
            validate_group_name(group)?;
        }
        for tag in &self.tags {
            let valid = !tag.is_empty()
                && tag.len() <= 64
                && tag
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.:".contains(c));
            if !valid {
                return Err(VerityError::invalid(
                    "tags",
                    format!("tag {tag:?} is invalid: use 1-64 letters, digits, '-', '_', '.', ':'"),
                ));
            }
        }
        Ok(())
    }
}

struct Pending {
    record: DocumentRecord,
    language: Language,
    chunks: Vec<Chunk>,
    is_update: bool,
}

#[derive(Default)]
struct Batch {
    documents: Vec<Pending>,
    chunks: usize,
}

/// What to ingest: [`Verity::ingest`], the one way in, takes any of these.
#[derive(Debug, Clone)]
pub enum IngestInput {
    /// Files and directories on this machine, walked; a file unchanged since its last ingest is
    /// skipped. A document without groups of its own gets the collection's default groups.
    Paths(Vec<PathBuf>),
    /// One document's bytes (an upload): `file_name`'s extension says how to read them when
    /// their content does not, and `source` is the name the document is stored under.
    Bytes {
        file_name: String,
        source: String,
        bytes: Vec<u8>,
    },
    /// Documents already parsed (the SQuAD evaluations).
    Parsed(Vec<SourceDocument>),
}

impl Verity {
    /// Ingests `input` into `options.collection` on behalf of `caller`: the caller needs the
    /// ingest scope and the collection, may give documents only groups it may write, and
    /// replaces a stored document only if it may write that one's groups too. A file that
    /// cannot be ingested is reported in the result and the batch goes on; only a failing
    /// store or index stops it.
    pub async fn ingest(
        &self,
        caller: &Caller,
        input: IngestInput,
        options: &IngestOptions,
        progress: &dyn IngestProgress,
    ) -> VerityResult<IngestReport> {
        caller.require(Scope::Ingest)?;
        options.validate()?;
        if !caller.may_use_collection(&options.collection) {
            return Err(VerityError::NotFound {
                what: "collection",
                name: options.collection.clone(),
            });
        }
        let mut options = match input {
            IngestInput::Paths(_) => self.with_default_groups(options).await?,
            IngestInput::Bytes { .. } | IngestInput::Parsed(_) => options.clone(),
        };
        policy::require_writable(caller, &options.groups)?;
        options.writer.clone_from(&caller.groups);
        let progress = &Counted(progress);
        match input {
            IngestInput::Paths(paths) => self.ingest_paths(&paths, &options, progress).await,
            IngestInput::Bytes {
                file_name,
                source,
                bytes,
            } => {
                self.ingest_bytes(&options, &file_name, &source, bytes, progress)
                    .await
            }
            IngestInput::Parsed(documents) => {
                self.ingest_documents(&options, documents, progress).await
            }
        }
    }

    async fn ingest_paths(
        &self,
        paths: &[PathBuf],
        options: &IngestOptions,
        progress: &Counted<'_>,
    ) -> VerityResult<IngestReport> {
        let collection = options.collection.as_str();
        let mut report = IngestReport::default();
        let (files, unreadable) = match &options.root {
            Some(root) => collect_files_under(paths, root),
            None => collect_files(paths),
        };
        progress.total(files.len() + unreadable.len()).await;
        for (source, reason) in unreadable {
            progress.done(&source, FileOutcome::Failed).await;
            report.fail(source, FileFailure::NotFound(reason));
        }
        self.store.ensure_collection(collection).await?;

        // Files are read and parsed ahead (on blocking threads) while the embedder works on
        // the batch before them; the bounded queue between the two keeps memory flat however
        // many files there are.
        let (parsed, mut to_write) = tokio::sync::mpsc::channel(READ_AHEAD);
        let files = &files;
        let read = async move {
            for file in files {
                let read = self
                    .read_if_changed(options, &file.path, &file.source)
                    .await?;
                if parsed.send((file, read)).await.is_err() {
                    break;
                }
            }
            Ok::<_, VerityError>(())
        };
        let write = async {
            let mut batch = Batch::default();
            while let Some((file, read)) = to_write.recv().await {
                match read {
                    Ok(Some((document, is_update))) => {
                        self.stage(options, document, is_update, &mut batch).await?
                    }
                    Ok(None) => {
                        report.documents_unchanged += 1;
                        progress.done(&file.source, FileOutcome::Unchanged).await;
                    }
                    Err(reason) => {
                        progress.done(&file.source, FileOutcome::Failed).await;
                        report.fail(&file.source, reason);
                    }
                }
                if batch.chunks >= CHUNKS_PER_EMBEDDING_RUN {
                    self.flush(collection, &mut batch, &mut report, progress)
                        .await?;
                }
            }
            self.flush(collection, &mut batch, &mut report, progress)
                .await
        };
        tokio::try_join!(read, write)?;

        if options.prune {
            self.prune(collection, &mut report, progress).await?;
        }
        if options.optimize {
            self.index.optimize().await?;
        }
        Ok(report)
    }

    /// `options`, with the collection's default groups when it names none.
    async fn with_default_groups(&self, options: &IngestOptions) -> VerityResult<IngestOptions> {
        let mut options = options.clone();
        if options.groups.is_empty() {
            options.groups = self
                .store
                .collection_default_groups(&options.collection)
                .await?;
        }
        Ok(options)
    }

    async fn ingest_documents(
        &self,
        options: &IngestOptions,
        documents: Vec<SourceDocument>,
        progress: &Counted<'_>,
    ) -> VerityResult<IngestReport> {
        let collection = options.collection.as_str();
        progress.total(documents.len()).await;
        self.store.ensure_collection(collection).await?;
        let mut report = IngestReport::default();
        let mut batch = Batch::default();
        for document in documents {
            let id = document_id(collection, &document.source);
            let stored = self
                .compare_with_store(options, &id, &document.content_hash)
                .await?;
            match stored {
                Stored::Unchanged => {
                    report.documents_unchanged += 1;
                    progress
                        .done(&document.source, FileOutcome::Unchanged)
                        .await;
                    continue;
                }
                Stored::Refused => {
                    progress.done(&document.source, FileOutcome::Failed).await;
                    report.fail(
                        &document.source,
                        FileFailure::OverwriteRefused {
                            document: document.source.clone(),
                        },
                    );
                    continue;
                }
                Stored::New | Stored::Changed => {}
            }
            self.stage(options, document, stored == Stored::Changed, &mut batch)
                .await?;
            if batch.chunks >= CHUNKS_PER_EMBEDDING_RUN {
                self.flush(collection, &mut batch, &mut report, progress)
                    .await?;
            }
        }
        self.flush(collection, &mut batch, &mut report, progress)
            .await?;
        if options.optimize {
            self.index.optimize().await?;
        }
        Ok(report)
    }

    /// Removes a collection's documents from the index and the store, then the collection.
    pub(crate) async fn remove_collection(&self, collection: &str) -> VerityResult<usize> {
        let documents = self.store.documents_in_collection(collection).await?;
        for document in &documents {
            self.index.delete_document_chunks(&document.id, &[]).await?;
        }
        self.index.persist().await?;
        self.store.delete_collection(collection).await?;
        Ok(documents.len())
    }

    /// How a document of this run is made: the global pipeline fingerprint plus this run's
    /// tags, groups and language choice, so that changing any re-indexes the documents.
    fn document_fingerprint(&self, options: &IngestOptions) -> String {
        format!(
            "{};tags={};groups={};language={}",
            self.pipeline_fingerprint(),
            options.tags.join(","),
            options.groups.join(","),
            options.language.map_or("auto", |l| l.code())
        )
    }

    /// How a document with these bytes stands against what the store holds (one lookup).
    async fn compare_with_store(
        &self,
        options: &IngestOptions,
        document_id: &str,
        hash: &str,
    ) -> VerityResult<Stored> {
        let fingerprint = self.document_fingerprint(options);
        Ok(match self.store.document_state(document_id).await? {
            None => Stored::New,
            Some(s) if !policy::may_overwrite(options.writer.as_deref(), &s.groups) => {
                Stored::Refused
            }
            Some(s) if s.active && s.content_hash == hash && s.pipeline == fingerprint => {
                Stored::Unchanged
            }
            Some(_) => Stored::Changed,
        })
    }

    /// Reads a file. `Ok(Ok(None))`: unchanged since the last ingest; `Ok(Ok(Some((document,
    /// is_update))))`: to ingest; `Ok(Err(reason))`: the file cannot be ingested; `Err`: the
    /// store failed.
    async fn read_if_changed(
        &self,
        options: &IngestOptions,
        path: &Path,
        source: &str,
    ) -> VerityResult<Result<Option<(SourceDocument, bool)>, FileFailure>> {
        let limits = self.config.parse_limits.clone();
        let read = match &options.root {
            Some(root) => read_file_under(path, root, &limits),
            None => read_file(path, &limits),
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Err(e.into())),
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        self.read_bytes_if_changed(options, path, source, bytes, modified)
            .await
    }

    /// [`Self::read_if_changed`] for bytes already read: `name` is the file's name (its
    /// extension may say how to read it).
    async fn read_bytes_if_changed(
        &self,
        options: &IngestOptions,
        name: &Path,
        source: &str,
        bytes: Vec<u8>,
        modified: Option<i64>,
    ) -> VerityResult<Result<Option<(SourceDocument, bool)>, FileFailure>> {
        let hash = content_hash(&bytes);
        let stored = self
            .compare_with_store(options, &document_id(&options.collection, source), &hash)
            .await?;
        match stored {
            Stored::Unchanged => return Ok(Ok(None)),
            Stored::Refused => {
                return Ok(Err(FileFailure::OverwriteRefused {
                    document: source.to_string(),
                }));
            }
            Stored::New | Stored::Changed => {}
        }
        let name = name.to_path_buf();
        // Parsing is CPU-bound (a PDF can take a while): off the async workers.
        let limits = self.config.parse_limits.clone();
        let parsed = tokio::task::spawn_blocking(move || parse_named(&name, bytes, &limits))
            .await
            .map_err(|e| VerityError::internal("ingest", e))?;
        Ok(parsed.map_err(FileFailure::from).map(|parsed| {
            Some((
                SourceDocument {
                    source: source.to_string(),
                    content_hash: hash,
                    parsed,
                    modified,
                },
                stored == Stored::Changed,
            ))
        }))
    }

    /// One document given as bytes: parsed, chunked, embedded and indexed (searchable) before
    /// this returns.
    async fn ingest_bytes(
        &self,
        options: &IngestOptions,
        file_name: &str,
        source: &str,
        bytes: Vec<u8>,
        progress: &Counted<'_>,
    ) -> VerityResult<IngestReport> {
        let collection = options.collection.as_str();
        progress.total(1).await;
        self.store.ensure_collection(collection).await?;
        let modified = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64);
        let read = self
            .read_bytes_if_changed(options, Path::new(file_name), source, bytes, modified)
            .await?;
        let mut report = IngestReport::default();
        let (document, is_update) = match read {
            Ok(Some(read)) => read,
            Ok(None) => {
                report.documents_unchanged += 1;
                progress.done(source, FileOutcome::Unchanged).await;
                return Ok(report);
            }
            Err(reason) => {
                progress.done(source, FileOutcome::Failed).await;
                report.fail(source, reason);
                return Ok(report);
            }
        };
        let mut batch = Batch::default();
        self.stage(options, document, is_update, &mut batch).await?;
        self.flush(collection, &mut batch, &mut report, progress)
            .await?;
        if report.failures.is_empty() {
            // Searchable now; optimising (index building) is left to the shard's own pace.
            self.index.persist().await?;
        }
        Ok(report)
    }

    async fn stage(
        &self,
        options: &IngestOptions,
        document: SourceDocument,
        is_update: bool,
        batch: &mut Batch,
    ) -> VerityResult<()> {
        let collection = options.collection.as_str();
        let id = document_id(collection, &document.source);
        let language = options
            .language
            .unwrap_or_else(|| detect_language(&document.parsed.text));
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
                pipeline: self.document_fingerprint(options),
                text: document.parsed.text,
                language: language.code().to_string(),
                tags: options.tags.clone(),
                groups: options.groups.clone(),
                modified: document.modified,
            },
            language,
            chunks,
            is_update,
        });
        Ok(())
    }

    /// Embeds the batch's chunks in one run, then writes each document in an order that keeps
    /// the index consistent with the store through a crash at any step:
    ///
    /// 1. index: delete the documents' old points, and make that durable (until step 5 a
    ///    document is simply not found; were the delete lost in a crash, old points the store no
    ///    longer holds would come back);
    /// 2. store: write the document and its chunks as `indexing`;
    /// 3. index: upsert the new points, hidden;
    /// 4. store: mark the document `active`;
    /// 5. index: make its points visible.
    ///
    /// A searchable chunk therefore always belongs to an active document. What a crash leaves
    /// behind — hidden or missing points, an `indexing` document — is repaired by
    /// `verity reconcile` or redone by the next ingest.
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
        for document in &documents {
            progress.embedding(&document.record.source).await;
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
                    progress
                        .done(&document.record.source, FileOutcome::Failed)
                        .await;
                    report.fail(
                        document.record.source,
                        FileFailure::Embedding(e.to_string()),
                    );
                }
                return Ok(());
            }
        };

        for document in &documents {
            self.index
                .delete_document_chunks(&document.record.id, &[])
                .await?;
        }
        self.index.persist().await?;

        let mut vectors = vectors.into_iter();
        for document in documents {
            let Pending {
                record,
                language,
                chunks,
                is_update,
            } = document;
            self.store.write_document(&record, &chunks).await?;
            fault_point("after_store_write");
            let indexed: Vec<IndexedChunk> = chunks
                .into_iter()
                .zip(vectors.by_ref())
                .map(|(chunk, vector)| IndexedChunk {
                    collection: collection.to_string(),
                    title: record.title.clone(),
                    source: record.source.clone(),
                    language,
                    tags: record.tags.clone(),
                    groups: record.groups.clone(),
                    modified: record.modified,
                    chunk,
                    vector,
                })
                .collect();
            for (n, points) in indexed.chunks(UPSERT_BATCH).enumerate() {
                if n == 1 {
                    fault_point("mid_index_batch");
                }
                self.index.upsert(points).await?;
            }
            fault_point("before_status_update");
            self.store.mark_active(&record.id).await?;
            fault_point("before_publish");
            self.index.publish_document(&record.id).await?;

            report.chunks_embedded += indexed.len();
            let outcome = if is_update {
                report.documents_updated += 1;
                FileOutcome::Updated
            } else {
                report.documents_added += 1;
                FileOutcome::Added
            };
            progress.done(&record.source, outcome).await;
        }
        Ok(())
    }

    /// Removes the collection's documents whose files no longer exist. Index first, made
    /// durable, then the store: a crash in between leaves documents the next prune removes,
    /// never a searchable chunk without its document.
    async fn prune(
        &self,
        collection: &str,
        report: &mut IngestReport,
        progress: &dyn IngestProgress,
    ) -> VerityResult<()> {
        let gone: Vec<_> = self
            .store
            .documents_in_collection(collection)
            .await?
            .into_iter()
            // Only documents read from files; uploads have no file to be gone.
            .filter(|d| d.source.starts_with('/') && !Path::new(&d.source).exists())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        for document in &gone {
            self.index.delete_document_chunks(&document.id, &[]).await?;
        }
        self.index.persist().await?;
        for document in gone {
            self.store.delete_document(&document.id).await?;
            report.documents_removed += 1;
            progress.done(&document.source, FileOutcome::Removed).await;
        }
        Ok(())
    }
}
