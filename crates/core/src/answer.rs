use serde::{Deserialize, Serialize};

use crate::{MetadataFilter, RetrievalMode};

/// A question, as the CLI and `POST /v1/query` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub question: String,
    /// The collection to search; the default collection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// How many passages to retrieve (and list as citations); the settings' default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// `dense`, `sparse` or `hybrid`; the settings' default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RetrievalMode>,
    /// Conditions on document metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<MetadataFilter>,
}

/// A passage an answer rests on, with everything needed to find it again: the document, the
/// chunk, and the character span of the quoted text in the document's normalised text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The number used by `[n]` markers in the answer text, from 1.
    pub id: u32,
    pub document_id: String,
    pub title: String,
    /// The file path (or URL) the document was read from.
    pub source: String,
    pub chunk_id: String,
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// Retrieval score in the request's mode: cosine similarity (dense), BM25 (sparse), or
    /// reciprocal-rank-fusion score (hybrid).
    pub score: f32,
    /// Cosine similarity of the question and the passage, whatever the mode.
    pub similarity: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heading_path: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroundingStatus {
    /// Every sentence of the answer is quoted from a cited passage.
    Grounded,
    /// The evidence was too weak; no answer is given, only the nearest passages.
    Abstained,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grounding {
    pub status: GroundingStatus,
    /// Why the status was chosen, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer object shared by `verity ask --json` and `POST /v1/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub answer: String,
    /// For a grounded answer, the passages its `[n]` markers point at; for an abstention, the
    /// nearest passages found (none of them cited by the text).
    pub citations: Vec<Citation>,
    pub grounding: Grounding,
}

/// Where the time of one query went, in milliseconds (reported as `Server-Timing` over HTTP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub embed_ms: f64,
    pub search_ms: f64,
    pub total_ms: f64,
}
