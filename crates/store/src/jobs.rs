//! The ingest job queue, in the metadata store.

use sqlx::Row;
use verity_core::{FileState, VerityError, VerityResult};

use crate::store::{Backend, Store, db_error, now};

/// A file claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedFile {
    pub id: i64,
    pub job_id: i64,
    pub path: String,
    pub collection: String,
    /// The job's options, as JSON.
    pub options: String,
    pub attempts: i64,
    /// The source to ingest it under; `None`: its path.
    pub source: Option<String>,
    /// What the client called the file (an upload's file name).
    pub name: Option<String>,
}

/// A file of a job being created: where its bytes are, and (for an upload) the source it is
/// ingested under and the name the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJobFile {
    pub path: String,
    pub source: Option<String>,
    pub name: Option<String>,
}

impl NewJobFile {
    /// A file ingested under its own path.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            source: None,
            name: None,
        }
    }
}

/// A job to create.
#[derive(Debug, Clone, Default)]
pub struct NewJob<'a> {
    pub collection: &'a str,
    /// The job's ingest options, as JSON.
    pub options: &'a str,
    /// Who creates it (`local` for the command line).
    pub caller: &'a str,
    /// With the same caller, a second request under this key gets the first job.
    pub idempotency_key: Option<&'a str>,
    /// A hash of the request, kept to tell a retry from another request under the same key.
    pub request_hash: Option<&'a str>,
    /// `Some((worker, lease_seconds))`: the files start claimed by this worker (running, one
    /// attempt) — a batch ingest that processes its own files; `None`: queued.
    pub claimed_by: Option<(&'a str, i64)>,
}

/// What creating a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCreated {
    New(i64),
    /// The caller already has a job under this idempotency key.
    Existing {
        id: i64,
        request_hash: Option<String>,
    },
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: i64,
    pub collection: String,
    pub caller: String,
    pub options: String,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
}

/// One file of a job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFileRecord {
    pub id: i64,
    pub path: String,
    pub source: Option<String>,
    pub name: Option<String>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// `parsing` or `embedding` while running.
    pub stage: Option<String>,
    /// `added`, `updated`, `unchanged`, or why it failed.
    pub outcome: Option<String>,
    pub attempts: i64,
    pub worker: Option<String>,
}

impl JobFileRecord {
    /// What the API calls the file's state (the store's state, stage and outcome columns
    /// read together).
    pub fn file_state(&self) -> FileState {
        match (self.state.as_str(), self.stage.as_deref()) {
            ("queued", _) => FileState::Queued,
            ("running", Some("embedding")) => FileState::Embedding,
            ("running", _) => FileState::Parsing,
            ("done", _) if self.outcome.as_deref() == Some("unchanged") => FileState::Unchanged,
            ("done", _) => FileState::Indexed,
            ("cancelled", _) => FileState::Cancelled,
            _ => FileState::Failed,
        }
    }
}

/// How far a job has got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobProgress {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
}

const FILE_COLUMNS: &str = "id, path, source, name, state, stage, outcome, attempts, worker";

fn file_record(row: &sqlx::any::AnyRow) -> JobFileRecord {
    JobFileRecord {
        id: row.get("id"),
        path: row.get("path"),
        source: row.get("source"),
        name: row.get("name"),
        state: row.get("state"),
        stage: row.get("stage"),
        outcome: row.get("outcome"),
        attempts: row.get("attempts"),
        worker: row.get("worker"),
    }
}

impl Store {
    /// Creates a job of `paths` for `collection`; returns its id.
    pub async fn create_job(
        &self,
        collection: &str,
        options: &str,
        paths: &[String],
    ) -> VerityResult<i64> {
        let job = NewJob {
            collection,
            options,
            caller: "local",
            ..NewJob::default()
        };
        let files: Vec<NewJobFile> = paths.iter().map(NewJobFile::path).collect();
        match self.create_job_with(&job, |_| Ok(files)).await? {
            JobCreated::New(id) | JobCreated::Existing { id, .. } => Ok(id),
        }
    }

    /// The caller's job under an idempotency key, with its request hash.
    async fn job_by_key(
        &self,
        caller: &str,
        key: &str,
    ) -> VerityResult<Option<(i64, Option<String>)>> {
        let row = sqlx::query(
            "SELECT id, request_hash FROM ingest_jobs WHERE caller = $1 AND idempotency_key = $2",
        )
        .bind(caller)
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        Ok(row.map(|r| (r.get("id"), r.get("request_hash"))))
    }

    /// Creates a job, its files given by `files` once the job's id is known (uploads are moved
    /// into a directory named after it), all in one transaction: a job exists with all of its
    /// files or not at all. If the caller already has a job under `job.idempotency_key`,
    /// nothing is created (and `files` is not called): that job is returned.
    pub async fn create_job_with<F>(&self, job: &NewJob<'_>, files: F) -> VerityResult<JobCreated>
    where
        F: FnOnce(i64) -> VerityResult<Vec<NewJobFile>>,
    {
        if let Some(key) = job.idempotency_key
            && let Some((id, request_hash)) = self.job_by_key(job.caller, key).await?
        {
            return Ok(JobCreated::Existing { id, request_hash });
        }
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO ingest_jobs (collection, options, caller, idempotency_key, request_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(job.collection)
        .bind(job.options)
        .bind(job.caller)
        .bind(job.idempotency_key)
        .bind(job.request_hash)
        .bind(now())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(id) => id,
            Err(error) => {
                drop(tx);
                // Another request under the same key committed first: its job is the answer.
                if let Some(key) = job.idempotency_key
                    && let Some((id, request_hash)) = self.job_by_key(job.caller, key).await?
                {
                    return Ok(JobCreated::Existing { id, request_hash });
                }
                return Err(db_error(error));
            }
        };
        let files = files(id)?;
        let (state, worker, lease_until, attempts, stage) = match job.claimed_by {
            Some((worker, lease)) => (
                "running",
                Some(worker),
                Some(now() + lease),
                1_i64,
                Some("parsing"),
            ),
            None => ("queued", None, None, 0, None),
        };
        for file in &files {
            sqlx::query(
                "INSERT INTO ingest_job_files (job_id, path, source, name, state, worker, lease_until, attempts, stage, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(&file.path)
            .bind(file.source.as_deref())
            .bind(file.name.as_deref())
            .bind(state)
            .bind(worker)
            .bind(lease_until)
            .bind(attempts)
            .bind(stage)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(JobCreated::New(id))
    }

    /// A job; `None` if there is none with this id.
    pub async fn job(&self, id: i64) -> VerityResult<Option<JobRecord>> {
        let row = sqlx::query(
            "SELECT id, collection, caller, options, created_at, cancelled_at FROM ingest_jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        Ok(row.map(|r| JobRecord {
            id: r.get("id"),
            collection: r.get("collection"),
            caller: r.get("caller"),
            options: r.get("options"),
            created_at: r.get("created_at"),
            cancelled_at: r.get("cancelled_at"),
        }))
    }

    /// A job's files, in the order they were given.
    pub async fn job_file_records(&self, job_id: i64) -> VerityResult<Vec<JobFileRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM ingest_job_files WHERE job_id = $1 ORDER BY id"
        )))
        .bind(job_id)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        Ok(rows.iter().map(file_record).collect())
    }

    /// Records the stage ([`FileState::Parsing`], [`FileState::Embedding`]) of a file while it
    /// runs; a file that is no longer running keeps its end state.
    pub async fn set_file_stage(&self, id: i64, stage: FileState) -> VerityResult<()> {
        let stage = match stage {
            FileState::Parsing => "parsing",
            FileState::Embedding => "embedding",
            other => {
                return Err(VerityError::internal(
                    "metadata store",
                    format!("{other:?} is an end state, not a stage of a running file"),
                ));
            }
        };
        sqlx::query(
            "UPDATE ingest_job_files SET stage = $1, updated_at = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(stage)
        .bind(now())
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// [`Self::finish_file`] for many files in one transaction: `(id, failed, outcome)`.
    pub async fn finish_files(
        &self,
        worker: &str,
        files: &[(i64, bool, String)],
    ) -> VerityResult<()> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        for (id, failed, outcome) in files {
            sqlx::query(
                "UPDATE ingest_job_files SET state = $1, outcome = $2, lease_until = NULL, stage = NULL, updated_at = $3
                 WHERE id = $4 AND worker = $5 AND state = 'running'",
            )
            .bind(if *failed { "failed" } else { "done" })
            .bind(outcome.as_str())
            .bind(now())
            .bind(*id)
            .bind(worker)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Extends the leases of a worker's running files of a job (a long batch keeps its files).
    pub async fn renew_leases(
        &self,
        job_id: i64,
        worker: &str,
        lease_seconds: i64,
    ) -> VerityResult<()> {
        sqlx::query(
            "UPDATE ingest_job_files SET lease_until = $1
             WHERE job_id = $2 AND worker = $3 AND state = 'running'",
        )
        .bind(now() + lease_seconds)
        .bind(job_id)
        .bind(worker)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Puts every running file back in the queue, for a process that knows it is the only
    /// worker (SQLite in a locked data directory): whoever ran them is dead. A file that has
    /// used up its attempts fails instead. Returns (requeued, failed).
    pub async fn requeue_running_files(&self, max_attempts: i64) -> VerityResult<(u64, u64)> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let failed = sqlx::query(
            "UPDATE ingest_job_files SET state = 'failed', outcome = 'gave up after repeated crashes', lease_until = NULL, stage = NULL, updated_at = $1
             WHERE state = 'running' AND attempts >= $2",
        )
        .bind(now())
        .bind(max_attempts)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        let requeued = sqlx::query(
            "UPDATE ingest_job_files SET state = 'queued', lease_until = NULL, worker = NULL, stage = NULL, updated_at = $1
             WHERE state = 'running'",
        )
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        tx.commit().await.map_err(db_error)?;
        Ok((requeued, failed))
    }

    /// Cancels a job: its queued files become `cancelled` (a running file finishes). Returns
    /// the files cancelled now.
    pub async fn cancel_job(&self, job_id: i64) -> VerityResult<Vec<JobFileRecord>> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        sqlx::query(
            "UPDATE ingest_jobs SET cancelled_at = COALESCE(cancelled_at, $1) WHERE id = $2",
        )
        .bind(now())
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ingest_job_files SET state = 'cancelled', updated_at = $1
             WHERE job_id = $2 AND state = 'queued' RETURNING {FILE_COLUMNS}"
        )))
        .bind(now())
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(rows.iter().map(file_record).collect())
    }

    /// Claims the next file to ingest — queued, or running with an expired lease (its worker
    /// died) — for `lease_seconds`. Two workers never claim the same file: Postgres skips rows
    /// another transaction has locked; SQLite runs one writer at a time.
    pub async fn claim_file(
        &self,
        worker: &str,
        lease_seconds: i64,
        max_attempts: i64,
    ) -> VerityResult<Option<ClaimedFile>> {
        let now = now();
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE ingest_job_files SET state = 'running', stage = 'parsing', lease_until = $1, worker = $2, attempts = attempts + 1, updated_at = $3
             WHERE id = (SELECT id FROM ingest_job_files
                         WHERE (state = 'queued' OR (state = 'running' AND lease_until < $3)) AND attempts < $4
                         ORDER BY id LIMIT 1 {lock})
             RETURNING id, job_id, path, attempts, source, name"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now + lease_seconds)
            .bind(worker)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let job_id: i64 = row.get("job_id");
        let job = sqlx::query("SELECT collection, options FROM ingest_jobs WHERE id = $1")
            .bind(job_id)
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(Some(ClaimedFile {
            id: row.get("id"),
            job_id,
            path: row.get("path"),
            collection: job.get("collection"),
            options: job.get("options"),
            attempts: row.get("attempts"),
            source: row.get("source"),
            name: row.get("name"),
        }))
    }

    /// Records the end of a claimed file: `done` with its outcome, or `failed` with the reason.
    pub async fn finish_file(
        &self,
        id: i64,
        worker: &str,
        failed: bool,
        outcome: &str,
    ) -> VerityResult<()> {
        sqlx::query(
            "UPDATE ingest_job_files SET state = $1, outcome = $2, lease_until = NULL, stage = NULL, updated_at = $3
             WHERE id = $4 AND worker = $5 AND state = 'running'",
        )
        .bind(if failed { "failed" } else { "done" })
        .bind(outcome)
        .bind(now())
        .bind(id)
        .bind(worker)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Files that used up their attempts while running are marked failed.
    pub async fn fail_exhausted_files(&self, max_attempts: i64) -> VerityResult<u64> {
        let done = sqlx::query(
            "UPDATE ingest_job_files SET state = 'failed', outcome = 'gave up after repeated crashes', lease_until = NULL, stage = NULL
             WHERE state = 'running' AND lease_until < $1 AND attempts >= $2",
        )
        .bind(now())
        .bind(max_attempts)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    /// How far a job has got; `NotFound` for an unknown job.
    pub async fn job_progress(&self, job_id: i64) -> VerityResult<JobProgress> {
        let exists = sqlx::query("SELECT 1 FROM ingest_jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        if exists.is_none() {
            return Err(VerityError::NotFound {
                what: "ingest job",
                name: job_id.to_string(),
            });
        }
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM ingest_job_files WHERE job_id = $1 GROUP BY state",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        let mut progress = JobProgress::default();
        for row in rows {
            let n: i64 = row.get("n");
            match row.get::<String, _>("state").as_str() {
                "queued" => progress.queued = n,
                "running" => progress.running = n,
                "done" => progress.done = n,
                "cancelled" => progress.cancelled = n,
                _ => progress.failed = n,
            }
        }
        Ok(progress)
    }

    /// Who processed each file of a job, and how often it was claimed: (path, worker, attempts).
    pub async fn job_files(&self, job_id: i64) -> VerityResult<Vec<(String, Option<String>, i64)>> {
        let rows = sqlx::query(
            "SELECT path, worker, attempts FROM ingest_job_files WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("path"), r.get("worker"), r.get("attempts")))
            .collect())
    }
}
