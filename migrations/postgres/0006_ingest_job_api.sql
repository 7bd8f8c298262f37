-- Ingest jobs over HTTP (same as migrations/sqlite/0006): the caller, the Idempotency-Key and
-- a hash of its request, the cancellation time; per file the stage, the source, the client's
-- name for it, and the state `cancelled`.
ALTER TABLE ingest_jobs ADD COLUMN caller TEXT NOT NULL DEFAULT 'local';
ALTER TABLE ingest_jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE ingest_jobs ADD COLUMN request_hash TEXT;
ALTER TABLE ingest_jobs ADD COLUMN cancelled_at BIGINT;
CREATE UNIQUE INDEX ingest_jobs_idempotency ON ingest_jobs (caller, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE ingest_job_files ADD COLUMN stage TEXT
    CHECK (stage IS NULL OR stage IN ('parsing', 'embedding'));
ALTER TABLE ingest_job_files ADD COLUMN source TEXT;
ALTER TABLE ingest_job_files ADD COLUMN name TEXT;
ALTER TABLE ingest_job_files DROP CONSTRAINT ingest_job_files_state_check;
ALTER TABLE ingest_job_files ADD CONSTRAINT ingest_job_files_state_check
    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled'));
CREATE INDEX ingest_job_files_job ON ingest_job_files (job_id);
