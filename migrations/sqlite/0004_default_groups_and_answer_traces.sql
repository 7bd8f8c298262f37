-- The access groups a collection gives its documents when an ingest or an upload names none
-- (JSON array; empty: anyone who may read the collection).
ALTER TABLE collections ADD COLUMN default_groups TEXT NOT NULL DEFAULT '[]';

-- The trace of every answer: what was asked, what retrieval found, what the model was given
-- (by hash) and answered, the timings, and the asker's feedback. Questions may hold personal
-- data: traces older than traces.retention_days are deleted, and traces.enabled = false keeps
-- none.
CREATE TABLE answer_traces (
    id               TEXT PRIMARY KEY NOT NULL,  -- UUIDv4, the answer's "id"
    caller           TEXT NOT NULL,              -- key:<id>, oidc:<subject>, local
    collection       TEXT NOT NULL,
    question         TEXT NOT NULL,
    mode             TEXT NOT NULL,
    candidates       TEXT NOT NULL,              -- JSON array: rank, document, chunk, scores
    prompt_hash      TEXT,                       -- SHA-256 of the prompt; NULL: no model asked
    generator        TEXT NOT NULL,
    answer           TEXT NOT NULL,              -- JSON: the answer object as returned
    timings          TEXT NOT NULL,              -- JSON
    feedback_rating  TEXT CHECK (feedback_rating IN ('up', 'down')),
    feedback_comment TEXT,
    feedback_at      INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE INDEX answer_traces_by_time ON answer_traces (created_at);
