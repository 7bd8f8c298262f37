//! Verity's domain: documents, chunks, citations and answers, the traits that connect the
//! pipeline stages (embedding, the vector index, answering), and the errors they share.
//!
//! Key decision: this crate knows nothing external — no SQL, no Qdrant, no ONNX Runtime, no
//! HTTP. Every other crate depends on it, and it depends on none of them, so each backend can be
//! swapped (SQLite for Postgres, Qdrant Edge for a Qdrant server) behind the same types.

mod access;
mod answer;
mod document;
mod error;
mod ids;
mod jobs;
mod language;
mod library;
pub mod policy;
mod query;
mod traits;

pub use access::{Authenticator, Caller, CollectionInfo, Collections, Scope};
pub use answer::{
    Answer, AnswerEvent, AttributedSentence, Citation, CitationAction, Grounding, GroundingStatus,
    QueryRequest, Timings, UnsupportedSentence,
};
pub use document::{Chunk, DocumentFormat, DocumentStatus, Heading, ParsedDocument};
pub use error::{ErrorCode, VerityError, VerityResult};
pub use ids::{chunk_id, document_id};
pub use jobs::{
    FileState, IngestJob, IngestJobs, JobCounts, JobCreation, JobFile, JobInput, JobState,
    NewIngestJob, UploadLimits, UploadReceiver,
};
pub use language::{Language, detect_language, recognised_language};
pub use library::{
    AnswerTrace, AnswerTraces, DocumentDetail, DocumentInfo, DocumentPage, DocumentQuery,
    Documents, Feedback, Rating, TraceCandidate, Upload, UploadStatus, UploadedDocument,
};
pub use query::{
    Fusion, MetadataFilter, RetrievalMode, SearchQuery, parse_day, source_directories,
};
pub use traits::{
    AnswerService, AnswerStream, Embedder, IndexedChunk, IndexedPoint, Readiness, RetrievedChunk,
    SearchFilter, VectorIndex, collect_answer,
};

/// The access group a document without groups carries in the index: readable by anyone who
/// may read its collection. Not a valid group name, so no caller can be given it.
pub const PUBLIC_GROUP: &str = "*";

/// Checks an access group name: 1–64 characters of letters, digits, `-`, `_`, `.`, `:`, `@`.
pub fn validate_group_name(name: &str) -> VerityResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.:@".contains(c));
    if valid {
        Ok(())
    } else {
        Err(VerityError::invalid(
            "groups",
            format!("group {name:?} is invalid: use 1-64 letters, digits, '-', '_', '.', ':', '@'"),
        ))
    }
}

/// The collection documents go to, and questions are asked of, when none is named.
pub const DEFAULT_COLLECTION: &str = "default";

/// Checks a collection name: 1–64 characters of ASCII letters, digits, `-` and `_`.
///
/// Names travel into file paths, payload filters and URLs, so they are kept boring on purpose.
pub fn validate_collection_name(name: &str) -> VerityResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(VerityError::invalid(
            "collection",
            format!(
                "collection name {name:?} is invalid: use 1-64 characters of letters, digits, '-' and '_'"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_are_restricted_to_safe_characters() {
        assert!(validate_collection_name("handbook").is_ok());
        assert!(validate_collection_name("hr_2024-es").is_ok());
        assert!(validate_collection_name("").is_err());
        assert!(validate_collection_name("../etc").is_err());
        assert!(validate_collection_name("a b").is_err());
        assert!(validate_collection_name(&"x".repeat(65)).is_err());
    }
}
