-- Paged formats (PDF): the page, from 1, that a chunk starts on; NULL for unpaged formats.
ALTER TABLE chunks ADD COLUMN page INTEGER;
