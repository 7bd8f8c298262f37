-- The ingest queue: a job is a batch of files for one collection; workers claim files one at a
-- time with a lease, so a killed worker's file is taken again once its lease runs out.
CREATE TABLE ingest_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    collection  TEXT NOT NULL,
    options     TEXT NOT NULL,                 -- JSON: tags, language
    created_at  INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE ingest_job_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER NOT NULL REFERENCES ingest_jobs(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER,
    worker       TEXT,
    outcome      TEXT,                         -- added | updated | unchanged | failed reason
    updated_at   INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE INDEX ingest_job_files_claimable ON ingest_job_files (state, lease_until);
