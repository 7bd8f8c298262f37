//! The metadata store: collections, documents (with their normalised text) and chunks, in
//! SQLite through sqlx, with the schema from `migrations/sqlite`.
//!
//! Key decision: the store is the source of truth and is written before the vector index. A
//! document is `indexing` until the index holds all of its chunks, then `active`; anything a
//! crash leaves half-done is visible here and redone by the next ingest.

mod sqlite;

pub use sqlite::{DocumentRecord, DocumentState, Store, StoredDocument};
