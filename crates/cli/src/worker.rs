//! Scale-out ingestion: `verity ingest --enqueue` records a job in the store; any number of
//! `verity worker` processes (sharing the store and a Qdrant server) take its files one at a
//! time under a lease, so a killed worker's file is picked up again when its lease runs out.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use verity_core::{Language, VerityError, VerityResult};
use verity_ingest::collect_files;

use crate::app::Verity;
use crate::pipeline::{IngestOptions, Quiet};

/// The part of a job's ingest options kept with the job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JobOptions {
    tags: Vec<String>,
    language: Option<Language>,
    #[serde(default)]
    groups: Vec<String>,
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
        paths: &[PathBuf],
        options: &IngestOptions,
    ) -> VerityResult<(i64, usize)> {
        verity_core::validate_collection_name(&options.collection)?;
        let (files, missing) = collect_files(paths);
        // Missing paths are queued too: the worker reports them as failed, like `verity ingest`.
        let mut all: Vec<String> = files.into_iter().map(|f| f.source).collect();
        all.extend(missing.into_iter().map(|(path, _)| path));
        let job_options = serde_json::to_string(&JobOptions {
            tags: options.tags.clone(),
            language: options.language,
            groups: options.groups.clone(),
        })
        .map_err(|e| VerityError::internal("jobs", e))?;
        let id = self
            .store
            .create_job(&options.collection, &job_options, &all)
            .await?;
        Ok((id, all.len()))
    }

    /// Takes files from the queue and ingests them until the queue is empty (or forever with
    /// `follow`). While the store is unreachable it waits, backing off, and goes on.
    pub async fn run_worker(&self, options: &WorkerOptions) -> VerityResult<WorkerReport> {
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
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                return Ok(report);
            };
            let job: JobOptions = serde_json::from_str(&file.options).unwrap_or_default();
            let ingest_options = IngestOptions::new(file.collection.clone())
                .with_tags(job.tags)
                .with_groups(job.groups)
                .with_language(job.language)
                .with_optimize(false);
            let result = match self
                .ingest_paths(&[PathBuf::from(&file.path)], &ingest_options, &Quiet)
                .await
            {
                Ok(result) => result,
                // A backend went away mid-file: leave the file to its lease (it is taken again,
                // by this worker or another, once the lease runs out) and wait.
                Err(VerityError::Unavailable { component, message }) => {
                    tracing::warn!(%component, %message, file = %file.path, "backend unavailable while ingesting; the file will be retried");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(other) => return Err(other),
            };
            let (failed, outcome) = match result.failures.first() {
                Some(failure) => (true, failure.reason.clone()),
                None if result.documents_added > 0 => (false, "added".to_string()),
                None if result.documents_updated > 0 => (false, "updated".to_string()),
                None => (false, "unchanged".to_string()),
            };
            self.store
                .finish_file(file.id, &options.name, failed, &outcome)
                .await?;
            unoptimized = true;
            if failed {
                report.files_failed += 1;
            } else {
                report.files_done += 1;
            }
        }
    }

    async fn claim(
        &self,
        options: &WorkerOptions,
    ) -> VerityResult<Option<verity_store::ClaimedFile>> {
        self.store
            .fail_exhausted_files(options.max_attempts)
            .await?;
        self.store
            .claim_file(&options.name, options.lease_seconds, options.max_attempts)
            .await
    }
}
