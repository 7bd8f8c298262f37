-- The same schema as migrations/sqlite (keep them in step): the metadata store is the source
-- of truth, and the vector index can be rebuilt from it. Integers are BIGINT so both backends
-- read them as 64-bit; times are seconds since the Unix epoch.

CREATE TABLE collections (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM now())::BIGINT
);

CREATE TABLE documents (
    id            TEXT PRIMARY KEY NOT NULL,
    collection    TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    format        TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    pipeline      TEXT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1,
    status        TEXT NOT NULL CHECK (status IN ('indexing', 'active')),
    text          TEXT NOT NULL,
    language      TEXT NOT NULL,
    tags          TEXT NOT NULL,
    modified      BIGINT,
    created_at    BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM now())::BIGINT,
    updated_at    BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM now())::BIGINT,
    UNIQUE (collection, source)
);

CREATE TABLE chunks (
    id            TEXT PRIMARY KEY NOT NULL,
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal       BIGINT NOT NULL,
    start_char    BIGINT NOT NULL,
    end_char      BIGINT NOT NULL,
    heading_path  TEXT NOT NULL,
    text          TEXT NOT NULL,
    token_count   BIGINT NOT NULL,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_by_document ON chunks (document_id);
