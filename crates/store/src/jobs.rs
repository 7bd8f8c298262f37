//! The ingest job queue, in the metadata store.

use sqlx::Row;
use verity_core::{VerityError, VerityResult};

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
}

/// How far a job has got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobProgress {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

impl Store {
    /// Creates a job of `paths` for `collection`; returns its id.
    pub async fn create_job(
        &self,
        collection: &str,
        options: &str,
        paths: &[String],
    ) -> VerityResult<i64> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ingest_jobs (collection, options) VALUES ($1, $2) RETURNING id",
        )
        .bind(collection)
        .bind(options)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        for path in paths {
            sqlx::query(
                "INSERT INTO ingest_job_files (job_id, path, state) VALUES ($1, $2, 'queued')",
            )
            .bind(id)
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(id)
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
            "UPDATE ingest_job_files SET state = 'running', lease_until = $1, worker = $2, attempts = attempts + 1, updated_at = $3
             WHERE id = (SELECT id FROM ingest_job_files
                         WHERE (state = 'queued' OR (state = 'running' AND lease_until < $3)) AND attempts < $4
                         ORDER BY id LIMIT 1 {lock})
             RETURNING id, job_id, path, attempts"
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
            "UPDATE ingest_job_files SET state = $1, outcome = $2, lease_until = NULL, updated_at = $3
             WHERE id = $4 AND worker = $5",
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
            "UPDATE ingest_job_files SET state = 'failed', outcome = 'gave up after repeated crashes', lease_until = NULL
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
