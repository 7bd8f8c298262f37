-- The documents each answer drew on, so that deleting a document withdraws its text from the
-- traces of the answers that used it (answer_traces.redacted_at says when). Filled from the
-- candidates of the traces already kept.
CREATE TABLE answer_trace_sources (
    trace_id    TEXT NOT NULL REFERENCES answer_traces(id) ON DELETE CASCADE,
    document_id TEXT NOT NULL,
    PRIMARY KEY (trace_id, document_id)
);
CREATE INDEX answer_trace_sources_by_document ON answer_trace_sources (document_id);
INSERT OR IGNORE INTO answer_trace_sources (trace_id, document_id)
    SELECT t.id, json_extract(c.value, '$.document_id')
    FROM answer_traces t, json_each(t.candidates) c
    WHERE json_extract(c.value, '$.document_id') IS NOT NULL;

ALTER TABLE answer_traces ADD COLUMN redacted_at INTEGER;
