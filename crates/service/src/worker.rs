//! Scale-out ingestion: `verity ingest --enqueue` records a job in the store; any number of
//! `verity worker` processes (sharing the store and a Qdrant server) take its files one at a
//! time under a lease, so a killed worker's file is picked up again when its lease runs out.
//! `verity serve` runs one in its own process for the jobs of `POST /v1/ingest/jobs`, and
//! `verity ingest` records its batch as a job of files it owns, so every ingest leaves per-file
//! states behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use verity_core::{Caller, FileState, Language, Scope, VerityError, VerityResult, policy};
use verity_ingest::{collect_files, read_file};
use verity_store::{Backend, ClaimedFile, JobCreated, NewJob, NewJobFile, Store};

use crate::Verity;
use crate::pipeline::{
    FileOutcome, IngestInput, IngestOptions, IngestProgress, IngestReport, fault_point,
};

/// The part of a job's ingest options kept with the job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JobOptions {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The creator's groups, which bound what the job may overwrite (`None`: no limit).
    #[serde(default)]
    pub writer: Option<Vec<String>>,
    /// For server-side paths sent over the API: the canonical `ingest.allowed_root` every file
    /// must still be under when the worker opens it.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// The job came through the API: its collection existed when it was accepted, and a file
    /// whose turn comes after the collection was deleted fails instead of recreating it.
    #[serde(default)]
    pub collection_must_exist: bool,
    /// The API key that created the job: once it is revoked, its remaining files fail.
    #[serde(default)]
    pub api_key: Option<String>,
}

/// Wakes this process's idle worker when a job is created here (others poll every second).
static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

pub(crate) fn wake_worker() {
    WAKE.notify_one();
}

/// How long a batch's own files stay leased to it; renewed every [`BATCH_RENEW`].
const BATCH_LEASE_SECONDS: i64 = 600;
const BATCH_RENEW: Duration = Duration::from_secs(60);

/// Records a running file's stage as it goes to the embedder (a write that only touches
/// running files, so it can never overwrite a file's end state).
struct StageHook {
    store: Store,
    file: i64,
}

#[async_trait]
impl IngestProgress for StageHook {
    async fn embedding(&self, _source: &str) {
        if let Err(error) = self
            .store
            .set_file_stage(self.file, FileState::Embedding)
            .await
        {
            tracing::warn!(%error, file = self.file, "cannot record a file's stage");
        }
    }
}

/// What a finished file's row says: failed or not, and its outcome or reason.
fn outcome_of(report: &IngestReport) -> (bool, String) {
    match report.outcome() {
        Ok(outcome) => (false, outcome.as_str().to_string()),
        Err(failure) => (true, failure.to_string()),
    }
}

/// Who a queued file is ingested as: its job's creator, as far as the job recorded it (the
/// ingest scope, the job's collection, and the groups that bound what it may write).
fn job_caller(file: &ClaimedFile, job: &JobOptions) -> Caller {
    Caller {
        subject: format!("job:{}", file.job_id),
        scopes: vec![Scope::Ingest],
        collections: Some(vec![file.collection.clone()]),
        groups: job.writer.clone(),
    }
}

/// Removes an uploaded file once its file is done (and its job's directory once empty).
pub(crate) fn remove_upload(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "cannot remove an uploaded file");
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// A batch's progress display that also records each file's stage and end in its job. The
/// pipeline awaits each call between its own store writes (on SQLite a second writer at the
/// same time could make the pipeline's writes fail as busy); unchanged files are written 64 at
/// a time, so a re-run of an unchanged batch stays fast.
struct JobRecorder<'a> {
    inner: &'a dyn IngestProgress,
    store: Store,
    job: i64,
    worker: String,
    files: HashMap<String, i64>,
    pending: std::sync::Mutex<Vec<(i64, bool, String)>>,
    renewed: std::sync::Mutex<std::time::Instant>,
}

impl JobRecorder<'_> {
    fn warn_unless_written(&self, what: &str, written: VerityResult<()>) {
        if let Err(error) = written {
            tracing::warn!(%error, job = self.job, "cannot record {what}");
        }
    }

    async fn flush(&self) {
        let finished = std::mem::take(&mut *self.pending.lock().expect("not poisoned"));
        if !finished.is_empty() {
            let written = self.store.finish_files(&self.worker, &finished).await;
            self.warn_unless_written("finished files", written);
        }
        let renew = {
            let mut renewed = self.renewed.lock().expect("not poisoned");
            let due = renewed.elapsed() >= BATCH_RENEW;
            if due {
                *renewed = std::time::Instant::now();
            }
            due
        };
        if renew {
            let written = self
                .store
                .renew_leases(self.job, &self.worker, BATCH_LEASE_SECONDS)
                .await;
            self.warn_unless_written("the batch's leases", written);
        }
    }
}

#[async_trait]
impl IngestProgress for JobRecorder<'_> {
    async fn total(&self, files: usize) {
        self.inner.total(files).await;
    }

    async fn embedding(&self, source: &str) {
        self.flush().await;
        if let Some(&id) = self.files.get(source) {
            let written = self.store.set_file_stage(id, FileState::Embedding).await;
            self.warn_unless_written("a file's stage", written);
        }
        self.inner.embedding(source).await;
    }

    async fn done(&self, source: &str, outcome: FileOutcome) {
        // Failures are recorded with their reasons from the report, at the end.
        if let (Some(&id), false) = (
            self.files.get(source),
            matches!(outcome, FileOutcome::Failed | FileOutcome::Removed),
        ) {
            let label = match outcome {
                FileOutcome::Unchanged => "unchanged",
                FileOutcome::Updated => "updated",
                _ => "added",
            };
            let full = {
                let mut pending = self.pending.lock().expect("not poisoned");
                pending.push((id, false, label.to_string()));
                pending.len() >= 64
            };
            if full || outcome != FileOutcome::Unchanged {
                self.flush().await;
            }
        }
        self.inner.done(source, outcome).await;
    }
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The name the worker claims files under (host and process id by default).
    pub name: String,
    /// How long a claimed file stays this worker's; after that another worker may take it.
    pub lease_seconds: i64,
    /// A file claimed this many times without finishing (its workers crashed) is failed.
    pub max_attempts: i64,
    /// Keep waiting for new jobs instead of stopping when the queue is empty.
    pub follow: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            name: format!("worker-{}", std::process::id()),
            lease_seconds: 300,
            max_attempts: 3,
            follow: false,
        }
    }
}

/// What `verity worker --json` prints when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    pub worker: String,
    pub files_done: usize,
    pub files_failed: usize,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Verity {
    /// Records a job of the files under `paths`; returns its id and its number of files.
    pub async fn enqueue(
        &self,
        caller: &Caller,
        paths: &[PathBuf],
        options: &IngestOptions,
    ) -> VerityResult<(i64, usize)> {
        caller.require(Scope::Ingest)?;
        options.validate()?;
        policy::require_writable(caller, &options.groups)?;
        let (files, missing) = collect_files(paths);
        // Missing paths are queued too: the worker reports them as failed, like `verity ingest`.
        let mut all: Vec<String> = files.into_iter().map(|f| f.source).collect();
        all.extend(missing.into_iter().map(|(path, _)| path));
        let job_options = serde_json::to_string(&JobOptions {
            tags: options.tags.clone(),
            language: options.language,
            groups: options.groups.clone(),
            writer: caller.groups.clone(),
            ..JobOptions::default()
        })
        .map_err(|e| VerityError::internal("jobs", e))?;
        let id = self
            .store
            .create_job(&options.collection, &job_options, &all)
            .await?;
        wake_worker();
        Ok((id, all.len()))
    }

    /// Takes files from the queue and ingests them until the queue is empty (or forever with
    /// `follow`). While the store is unreachable it waits, backing off, and goes on. Each file
    /// is ingested as its job's creator; running the queue is the operator's (admin) task.
    pub async fn run_worker(
        &self,
        caller: &Caller,
        options: &WorkerOptions,
    ) -> VerityResult<WorkerReport> {
        caller.require(Scope::Admin)?;
        let mut report = WorkerReport {
            worker: options.name.clone(),
            ..WorkerReport::default()
        };
        let mut backoff = Duration::from_millis(500);
        // Files ingested since the index was last optimised.
        let mut unoptimized = false;
        loop {
            let claimed = match self.claim(options).await {
                Ok(claimed) => {
                    backoff = Duration::from_millis(500);
                    claimed
                }
                Err(VerityError::Unavailable { component, message }) => {
                    tracing::warn!(%component, %message, wait_ms = backoff.as_millis() as u64, "store unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(other) => return Err(other),
            };
            let Some(file) = claimed else {
                if unoptimized {
                    self.index.optimize().await?;
                    unoptimized = false;
                }
                if options.follow {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = WAKE.notified() => {}
                    }
                    continue;
                }
                return Ok(report);
            };
            // Unreadable options would lose the creator's limits: the file fails, closed.
            let (job, refusal) = match serde_json::from_str::<JobOptions>(&file.options) {
                Ok(job) => {
                    let refusal = self.job_no_longer_allowed(&file, &job).await?;
                    (job, refusal)
                }
                Err(e) => (
                    JobOptions::default(),
                    Some(format!("the job's options cannot be read: {e}")),
                ),
            };
            if let Some(reason) = refusal {
                self.store
                    .finish_file(file.id, &options.name, true, &reason)
                    .await?;
                if file.source.is_some() {
                    remove_upload(Path::new(&file.path));
                }
                report.files_failed += 1;
                continue;
            }
            let caller = job_caller(&file, &job);
            let ingest_options = IngestOptions::new(file.collection.clone())
                .with_tags(job.tags)
                .with_groups(job.groups)
                .with_language(job.language)
                .with_root(job.root)
                .with_optimize(false);
            let hook = StageHook {
                store: self.store.clone(),
                file: file.id,
            };
            let document = verity_core::document_id(
                &file.collection,
                file.source.as_deref().unwrap_or(&file.path),
            );
            let writing = self.document_locks.lock(&document).await?;
            let result = match &file.source {
                Some(source) => {
                    self.ingest_uploaded(&caller, &file, source, &ingest_options, &hook)
                        .await
                }
                None => {
                    let input = IngestInput::Paths(vec![PathBuf::from(&file.path)]);
                    self.ingest(&caller, input, &ingest_options, &hook)
                        .await
                        .map(|report| outcome_of(&report))
                }
            };
            let (failed, outcome) = match result {
                Ok(result) => result,
                // A backend went away mid-file: leave the file to its lease (it is taken again,
                // by this worker or another, once the lease runs out) and wait.
                Err(VerityError::Unavailable { component, message }) => {
                    tracing::warn!(%component, %message, file = %file.path, "backend unavailable while ingesting; the file will be retried");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                // The file is ingested as its job's creator: a refusal of that caller (its
                // groups, its collection, its options) fails this file, not the worker.
                Err(
                    refused @ (VerityError::Forbidden(_)
                    | VerityError::NotFound { .. }
                    | VerityError::InvalidRequest { .. }),
                ) => (true, refused.to_string()),
                Err(other) => return Err(other),
            };
            drop(writing);
            self.store
                .finish_file(file.id, &options.name, failed, &outcome)
                .await?;
            fault_point("after_job_file");
            if file.source.is_some() {
                remove_upload(Path::new(&file.path));
            }
            unoptimized = true;
            if failed {
                report.files_failed += 1;
            } else {
                report.files_done += 1;
            }
        }
    }

    /// Why a queued file of a job accepted earlier may no longer be ingested: its collection
    /// was deleted meanwhile, or the key that created the job was revoked.
    async fn job_no_longer_allowed(
        &self,
        file: &ClaimedFile,
        job: &JobOptions,
    ) -> VerityResult<Option<String>> {
        if job.collection_must_exist && !self.store.collection_exists(&file.collection).await? {
            return Ok(Some(format!(
                "the collection {:?} was deleted after the job was accepted",
                file.collection
            )));
        }
        if let Some(id) = &job.api_key {
            let revoked = match self.store.api_key(id).await? {
                Some((key, _)) => key.revoked_at.is_some(),
                None => true,
            };
            if revoked {
                return Ok(Some(
                    "the API key that created this job was revoked".to_string(),
                ));
            }
        }
        Ok(None)
    }

    /// Ingests an uploaded file kept at its path under its upload source.
    async fn ingest_uploaded(
        &self,
        caller: &Caller,
        file: &ClaimedFile,
        source: &str,
        options: &IngestOptions,
        progress: &dyn IngestProgress,
    ) -> VerityResult<(bool, String)> {
        let file_name = file.name.clone().unwrap_or_else(|| file.path.clone());
        let bytes = match read_file(Path::new(&file.path), &self.config.parse_limits) {
            Ok(bytes) => bytes,
            Err(e) => return Ok((true, e.to_string())),
        };
        let input = IngestInput::Bytes {
            file_name,
            source: source.to_string(),
            bytes,
        };
        let report = self.ingest(caller, input, options, progress).await?;
        Ok(outcome_of(&report))
    }

    /// `verity ingest`: the batch pipeline (many documents per embedding run), recorded as a
    /// job whose files this process owns from the start, each file's stage and end written as
    /// it happens. Were the process killed, its unfinished files go back to the queue (at the
    /// next `verity serve` on SQLite; when their lease runs out on Postgres) and are finished
    /// by a worker. Returns the job's id and the batch's report.
    pub async fn ingest_as_job(
        &self,
        caller: &Caller,
        paths: &[PathBuf],
        options: &IngestOptions,
        progress: &dyn IngestProgress,
    ) -> VerityResult<(i64, IngestReport)> {
        caller.require(Scope::Ingest)?;
        options.validate()?;
        let (files, missing) = collect_files(paths);
        let mut rows: Vec<NewJobFile> = files
            .into_iter()
            .map(|f| NewJobFile::path(f.source))
            .collect();
        rows.extend(missing.into_iter().map(|(path, _)| NewJobFile::path(path)));
        let job_options = serde_json::to_string(&JobOptions {
            tags: options.tags.clone(),
            language: options.language,
            groups: options.groups.clone(),
            writer: caller.groups.clone(),
            ..JobOptions::default()
        })
        .map_err(|e| VerityError::internal("jobs", e))?;
        let worker = format!("ingest-{}", std::process::id());
        let created = self
            .store
            .create_job_with(
                &NewJob {
                    collection: &options.collection,
                    options: &job_options,
                    caller: &caller.subject,
                    claimed_by: Some((&worker, BATCH_LEASE_SECONDS)),
                    ..NewJob::default()
                },
                |_| Ok(rows),
            )
            .await?;
        let (JobCreated::New(job) | JobCreated::Existing { id: job, .. }) = created;
        let ids: HashMap<String, i64> = self
            .store
            .job_file_records(job)
            .await?
            .into_iter()
            .map(|f| (f.path, f.id))
            .collect();
        let recorder = JobRecorder {
            inner: progress,
            store: self.store.clone(),
            job,
            worker: worker.clone(),
            files: ids.clone(),
            pending: std::sync::Mutex::new(Vec::new()),
            renewed: std::sync::Mutex::new(std::time::Instant::now()),
        };
        let input = IngestInput::Paths(paths.to_vec());
        let report = self.ingest(caller, input, options, &recorder).await;
        let finished = std::mem::take(&mut *recorder.pending.lock().expect("not poisoned"));
        self.store.finish_files(&worker, &finished).await?;
        let report = report?;
        let failed: Vec<(i64, bool, String)> = report
            .failures
            .iter()
            .filter_map(|f| {
                ids.get(&f.source)
                    .map(|&id| (id, true, f.reason.to_string()))
            })
            .collect();
        self.store.finish_files(&worker, &failed).await?;
        Ok((job, report))
    }

    async fn claim(&self, options: &WorkerOptions) -> VerityResult<Option<ClaimedFile>> {
        self.store
            .fail_exhausted_files(options.max_attempts)
            .await?;
        self.store
            .claim_file(&options.name, options.lease_seconds, options.max_attempts)
            .await
    }
}

/// Starts `verity serve`'s own ingest worker (`ingest.serve_worker`). On SQLite the locked data
/// directory makes this process the only worker, so every running file is an orphan of a
/// killed process: back to the queue at once (or failed, once its attempts are used up). On
/// Postgres other workers may be alive: their leases decide. Staged uploads no job took are
/// removed.
pub async fn start_serve_worker(verity: Arc<Verity>) -> VerityResult<()> {
    let options = WorkerOptions {
        name: format!("serve-{}", std::process::id()),
        follow: true,
        ..WorkerOptions::default()
    };
    if verity.store.backend() == Backend::Sqlite {
        let (requeued, failed) = verity
            .store
            .requeue_running_files(options.max_attempts)
            .await?;
        if requeued + failed > 0 {
            tracing::info!(
                requeued,
                failed,
                "files left running by a stopped process: requeued, or failed after repeated crashes"
            );
        }
    }
    crate::jobs::remove_stale_staging(&verity.config.data_dir);
    tokio::spawn(async move {
        loop {
            // The server's own worker runs the queue as the operator who started the server.
            match verity.run_worker(&Caller::local(), &options).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::error!(%error, "the ingest worker stopped; restarting it in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(())
}
