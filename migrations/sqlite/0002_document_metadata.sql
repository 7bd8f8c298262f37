-- Metadata for filtering and for BM25: the document's language (en, es, pt), the tags given at
-- ingest (JSON array), and when its file was last modified (seconds since the Unix epoch).
ALTER TABLE documents ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE documents ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE documents ADD COLUMN modified INTEGER;
