-- The metadata store is the source of truth: every chunk the vector index holds is here, with
-- the document text its span refers into, so the index can be rebuilt from this database.
-- Times are seconds since the Unix epoch (the same in SQLite and Postgres).

CREATE TABLE collections (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE documents (
    id            TEXT PRIMARY KEY NOT NULL,   -- UUIDv5 of (collection, source)
    collection    TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,               -- canonical path (or URL)
    title         TEXT NOT NULL,
    format        TEXT NOT NULL,               -- markdown | text | html
    content_hash  TEXT NOT NULL,               -- sha256 of the source bytes
    pipeline      TEXT NOT NULL,               -- model, chunking, index format, tags, language choice
    version       INTEGER NOT NULL DEFAULT 1,  -- bumped on every rewrite
    -- 'indexing' while the vector index is being written, 'active' once it holds every chunk.
    -- A document left 'indexing' by a crash is re-indexed by the next ingest.
    status        TEXT NOT NULL CHECK (status IN ('indexing', 'active')),
    text          TEXT NOT NULL,               -- normalised text; chunk spans point into it
    language      TEXT NOT NULL,               -- en | es | pt
    tags          TEXT NOT NULL,               -- JSON array
    modified      INTEGER,                     -- the file's modification time
    created_at    INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at    INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (collection, source)
);

CREATE TABLE chunks (
    id            TEXT PRIMARY KEY NOT NULL,   -- UUIDv5; also the point id in the vector index
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    start_char    INTEGER NOT NULL,
    end_char      INTEGER NOT NULL,
    heading_path  TEXT NOT NULL,               -- JSON array of heading titles
    text          TEXT NOT NULL,
    token_count   INTEGER NOT NULL,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_by_document ON chunks (document_id);
