-- Ingest jobs over HTTP: who created a job (jobs of other callers do not exist for them), the
-- Idempotency-Key it was created under with a hash of its request (a retry with the same key
-- returns the same job; another body under that key is refused), and when it was cancelled.
ALTER TABLE ingest_jobs ADD COLUMN caller TEXT NOT NULL DEFAULT 'local';
ALTER TABLE ingest_jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE ingest_jobs ADD COLUMN request_hash TEXT;
ALTER TABLE ingest_jobs ADD COLUMN cancelled_at INTEGER;
CREATE UNIQUE INDEX ingest_jobs_idempotency ON ingest_jobs (caller, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Files: the stage a running file is in (parsing | embedding), the source it is ingested under
-- (NULL: its path; `upload:/<groups>/<name>` for an uploaded file kept at `path`), the name the
-- client gave it, and the state `cancelled`. SQLite cannot change a CHECK constraint in place:
-- the table is rebuilt (nothing references it).
CREATE TABLE ingest_job_files_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER NOT NULL REFERENCES ingest_jobs(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER,
    worker       TEXT,
    outcome      TEXT,                         -- added | updated | unchanged | failed reason
    updated_at   INTEGER NOT NULL DEFAULT (unixepoch()),
    stage        TEXT CHECK (stage IS NULL OR stage IN ('parsing', 'embedding')),
    source       TEXT,
    name         TEXT
);
INSERT INTO ingest_job_files_new (id, job_id, path, state, attempts, lease_until, worker, outcome, updated_at)
    SELECT id, job_id, path, state, attempts, lease_until, worker, outcome, updated_at FROM ingest_job_files;
DROP TABLE ingest_job_files;
ALTER TABLE ingest_job_files_new RENAME TO ingest_job_files;
CREATE INDEX ingest_job_files_claimable ON ingest_job_files (state, lease_until);
CREATE INDEX ingest_job_files_job ON ingest_job_files (job_id);
