-- Document-level access: the groups that may read a document (JSON array; empty: anyone who
-- may read its collection).
ALTER TABLE documents ADD COLUMN access_groups TEXT NOT NULL DEFAULT '[]';

-- API keys. Only a hash of each key is stored (the key is shown once, when it is created).
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,             -- the public part of the key, e.g. "k7f3a9c2e1b4"
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL,                -- SHA-256 of the whole key, hex
    scopes       TEXT NOT NULL,                -- JSON array: query, ingest, admin
    collections  TEXT,                         -- JSON array, or NULL for every collection
    groups_json  TEXT NOT NULL DEFAULT '[]',   -- JSON array of access groups
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
