-- The metadata store is the source of truth: every chunk the vector index holds is here, with
-- the document text its span refers into, so the index can be rebuilt from this database.

CREATE TABLE collections (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE documents (
    id            TEXT PRIMARY KEY NOT NULL,   -- UUIDv5 of (collection, source)
    collection    TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,               -- canonical path (or URL)
    title         TEXT NOT NULL,
    format        TEXT NOT NULL,               -- markdown | text | html
    content_hash  TEXT NOT NULL,               -- sha256 of the source bytes
    pipeline      TEXT NOT NULL,               -- model and chunking settings the chunks were made with
    version       INTEGER NOT NULL DEFAULT 1,  -- bumped on every content change
    -- 'indexing' while the vector index is being written, 'active' once it holds every chunk.
    -- A document left 'indexing' by a crash is re-indexed by the next ingest.
    status        TEXT NOT NULL CHECK (status IN ('indexing', 'active')),
    text          TEXT NOT NULL,               -- normalised text; chunk spans point into it
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
