-- Who writes a document now, across processes: uploads, workers and deletes of one document id
-- take its row before they write and remove it after, so a delete by one process cannot
-- interleave with another process's write (searchable points left without their document).
-- A row is a lease: one whose holder died is taken over once `lease_until` (Unix milliseconds) has
-- passed; a live holder renews it.
CREATE TABLE document_locks (
    document_id TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
