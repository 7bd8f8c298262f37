//! The metadata store: collections, documents (with their normalised text) and chunks, on
//! SQLite (the embedded default) or Postgres, chosen by the database URL, through sqlx. Each
//! backend has its schema under `migrations/<backend>`.
//!
//! Key decision: the store is the source of truth and is written before the vector index. A
//! document is `indexing` until the index holds all of its chunks, then `active`; anything a
//! crash leaves half-done is visible here and redone by the next ingest.

mod jobs;
mod keys;
mod library;
mod store;

pub use jobs::{
    ClaimedFile, JobCreated, JobFileRecord, JobProgress, JobRecord, NewJob, NewJobFile,
};
pub use keys::{ApiKeyRecord, NewApiKey};
pub use store::{Backend, DocumentRecord, DocumentState, Store, StoredDocument, redact};
