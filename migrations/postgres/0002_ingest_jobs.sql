-- The ingest queue (same as migrations/sqlite/0002): workers claim files with
-- FOR UPDATE SKIP LOCKED and a lease, so a killed worker's file is taken again later.
CREATE TABLE ingest_jobs (
    id          BIGSERIAL PRIMARY KEY,
    collection  TEXT NOT NULL,
    options     TEXT NOT NULL,
    created_at  BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM now())::BIGINT
);

CREATE TABLE ingest_job_files (
    id           BIGSERIAL PRIMARY KEY,
    job_id       BIGINT NOT NULL REFERENCES ingest_jobs(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    lease_until  BIGINT,
    worker       TEXT,
    outcome      TEXT,
    updated_at   BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM now())::BIGINT
);

CREATE INDEX ingest_job_files_claimable ON ingest_job_files (state, lease_until);
