//! Ingest jobs as the API manages them: a batch of files (uploaded, or paths on the server)
//! queued for the ingest workers, with a state per file, watched until done, cancellable.
//!
//! Every method answers for a [`Caller`]: a job of another caller does not exist for it (the
//! same `NotFound` an unknown id gets), unless it administers the job's collection.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Caller, Language, VerityResult};

/// Where a file of a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Waiting for a worker.
    Queued,
    /// Being read and parsed.
    Parsing,
    /// Its chunks are with the embedder (then stored and published).
    Embedding,
    /// Added or updated: answerable.
    Indexed,
    /// The same bytes were already indexed: nothing was embedded.
    Unchanged,
    /// Cannot be ingested; `reason` says why.
    Failed,
    /// The job was cancelled before a worker took it.
    Cancelled,
}

impl FileState {
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            FileState::Queued | FileState::Parsing | FileState::Embedding
        )
    }
}

/// Where a job stands: `queued` (no file taken yet), `running`, `done` (every file finished)
/// or `cancelled` (cancelled, and its running files finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Cancelled,
}

/// A job's files by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobCounts {
    pub queued: usize,
    pub parsing: usize,
    pub embedding: usize,
    pub indexed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl JobCounts {
    pub fn add(&mut self, state: FileState) {
        let slot = match state {
            FileState::Queued => &mut self.queued,
            FileState::Parsing => &mut self.parsing,
            FileState::Embedding => &mut self.embedding,
            FileState::Indexed => &mut self.indexed,
            FileState::Unchanged => &mut self.unchanged,
            FileState::Failed => &mut self.failed,
            FileState::Cancelled => &mut self.cancelled,
        };
        *slot += 1;
    }

    /// Files still queued or running.
    pub fn pending(&self) -> usize {
        self.queued + self.parsing + self.embedding
    }
}

/// One file of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobFile {
    /// What the client called it: an upload's file name, or the path it gave.
    pub name: String,
    /// The document's source: `upload:/<groups>/<name>`, or the file's absolute path.
    pub source: String,
    pub state: FileState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How often a worker took it (more than once after a crash).
    pub attempts: u32,
}

/// A job with its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestJob {
    pub id: i64,
    pub collection: String,
    pub state: JobState,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub counts: JobCounts,
    pub files: Vec<JobFile>,
}

/// How much one upload request may send: each file, and all its files together (the server's
/// `server.max_upload_bytes` and `server.max_job_upload_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub per_file: usize,
    pub total: usize,
}

/// The files of one upload request, handed to the service as their bytes arrive (from
/// [`IngestJobs::receive_uploads`]). The service stores them where no front end sees, within
/// the [`UploadLimits`], and removes them unless a job takes them ([`JobInput::Uploads`]); so a
/// front end never names a path on the server for an upload.
#[async_trait]
pub trait UploadReceiver: Send + Sync {
    /// Starts the next file, under the name the client gave it.
    async fn begin_file(&mut self, name: &str) -> VerityResult<()>;
    /// The next bytes of the current file; refused past the limits.
    async fn write(&mut self, chunk: &[u8]) -> VerityResult<()>;
    /// The current file is complete (and durably stored when this returns).
    async fn end_file(&mut self) -> VerityResult<()>;
    /// The receiver, for the service that made it to take back: a job is created only from a
    /// receiver of the same service.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// What a job ingests.
pub enum JobInput {
    /// Files received by the service for this request.
    Uploads(Box<dyn UploadReceiver>),
    /// Files and directories on the server, under the configured root.
    Paths(Vec<String>),
}

impl std::fmt::Debug for JobInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobInput::Uploads(_) => f.write_str("Uploads(..)"),
            JobInput::Paths(paths) => f.debug_tuple("Paths").field(paths).finish(),
        }
    }
}

/// A job to create.
#[derive(Debug)]
pub struct NewIngestJob {
    /// The default collection when absent.
    pub collection: Option<String>,
    /// Who may read its documents; `None`: the collection's default groups (as for uploads).
    pub groups: Option<Vec<String>>,
    pub tags: Vec<String>,
    pub language: Option<Language>,
    pub input: JobInput,
    /// A retry with the same key (from the same caller) and the same request (the same fields
    /// and files, compared by the service) gets the same job.
    pub idempotency_key: Option<String>,
}

/// What creating a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCreation {
    Created(IngestJob),
    /// The caller's earlier job under the same idempotency key, with the same request.
    Existing(IngestJob),
    /// The caller has a job under this idempotency key for a different request.
    KeyConflict {
        job_id: i64,
    },
}

#[async_trait]
pub trait IngestJobs: Send + Sync {
    /// Starts receiving the files of one upload request (the ingest scope is needed), to hand
    /// to [`Self::create_job`] as [`JobInput::Uploads`].
    fn receive_uploads(
        &self,
        caller: &Caller,
        limits: UploadLimits,
    ) -> VerityResult<Box<dyn UploadReceiver>>;
    async fn create_job(&self, caller: &Caller, job: NewIngestJob) -> VerityResult<JobCreation>;
    async fn ingest_job(&self, caller: &Caller, id: i64) -> VerityResult<IngestJob>;
    /// Cancels the job's queued files (a running file finishes); returns the job.
    async fn cancel_job(&self, caller: &Caller, id: i64) -> VerityResult<IngestJob>;
}
