use serde::{Deserialize, Serialize};

use crate::{MetadataFilter, RetrievalMode};

/// A question, as the CLI and `POST /v1/query` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Answer with Server-Sent Events (`sources`, `delta`…, `grounding`, `done`) instead of one
    /// JSON object. `Accept: text/event-stream` asks for the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// A passage an answer rests on, with everything needed to find it again: the document, the
/// chunk, and the character span of the quoted text in the document's normalised text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// the fused score (hybrid, see `query.fusion`).
    pub score: f32,
    /// Cosine similarity of the question and the passage, whatever the mode.
    pub similarity: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heading_path: Vec<String>,
    /// For paged formats (PDF), the page the passage starts on, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroundingStatus {
    /// Every sentence of the answer is supported by the passage it cites (Verity's citation,
    /// see `attributed`).
    Grounded,
    /// Some sentences of the generated answer were supported by no passage given and were
    /// removed; they are listed in `unsupported`.
    Partial,
    /// No answer is given: the evidence was too weak to ask a model, the model said the sources
    /// do not answer, or nothing the model wrote was supported. `citations` lists the nearest
    /// passages. (Also what an empty answer is.)
    #[default]
    Abstained,
    /// The language model failed or timed out; the answer quotes the passages directly.
    Fallback,
}

impl GroundingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GroundingStatus::Grounded => "grounded",
            GroundingStatus::Partial => "partial",
            GroundingStatus::Abstained => "abstained",
            GroundingStatus::Fallback => "fallback",
        }
    }
}

/// A sentence of a generated answer that verification removed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsupportedSentence {
    pub sentence: String,
    /// The `[n]` markers it carried (an empty list: it cited nothing).
    pub citations: Vec<u32>,
    pub reason: String,
}

/// What Verity did to the citation of a sentence it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CitationAction {
    /// The model cited nothing; Verity added the source that supports the sentence.
    Attributed,
    /// The model cited a source that does not support the sentence (or one that was not
    /// given); Verity replaced it with the source that does.
    Corrected,
}

impl CitationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CitationAction::Attributed => "attributed",
            CitationAction::Corrected => "corrected",
        }
    }
}

/// A sentence of a generated answer that was kept with citations Verity found, not the ones
/// the model wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributedSentence {
    /// The sentence as it stands in the answer, with Verity's markers.
    pub sentence: String,
    pub action: CitationAction,
    /// The `[n]` markers the model wrote (an empty list: none).
    pub model_citations: Vec<u32>,
    /// The sources that support the sentence, as its markers now say.
    pub citations: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grounding {
    pub status: GroundingStatus,
    /// Sentences removed from a generated answer because no source given supports them.
    #[serde(default)]
    pub unsupported: Vec<UnsupportedSentence>,
    /// Sentences kept whose citation Verity set itself: the model cited nothing, or the wrong
    /// source. Every sentence's citation is Verity's finding; this lists where it differs from
    /// the model's claim.
    #[serde(default)]
    pub attributed: Vec<AttributedSentence>,
    /// Why the status was chosen, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Grounding {
    pub fn new(status: GroundingStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            unsupported: Vec::new(),
            attributed: Vec::new(),
            reason: Some(reason.into()),
        }
    }
}

/// The answer object shared by `verity ask --json` and `POST /v1/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    /// The answer's id: `POST /v1/feedback` rates it and `GET /v1/answers/{id}` shows its
    /// trace. Empty when no trace was kept (`traces.enabled = false`, or the CLI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub answer: String,
    /// For a grounded answer, the passages its `[n]` markers point at (each `id` is the marker's
    /// number; a generated answer lists only the passages a kept sentence cites); for an
    /// abstention, the nearest passages found (none of them cited by the text).
    pub citations: Vec<Citation>,
    pub grounding: Grounding,
    /// What wrote the answer: `extractive`, or the language model (`mistralrs:NAME`,
    /// `openai:MODEL`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generator: String,
    /// SHA-256 of the prompt the language model was given (none for an extractive answer).
    /// Kept in the answer's trace, never sent to clients.
    #[serde(skip)]
    pub prompt_hash: Option<String>,
}

/// One event of a streamed answer, in the order they come: `Sources` once, `Delta` any number
/// of times, then `Grounding` and `Done` (or `Error`, after which nothing follows).
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerEvent {
    /// The numbered passages given to the generator, before any text.
    Sources(Vec<Citation>),
    /// Generated text as it comes, before verification.
    Delta(String),
    /// The verified answer: its text replaces what the deltas built.
    Grounding(Answer),
    Done(Timings),
    /// The answer failed; nothing follows. `code` is what a JSON error would carry.
    Error {
        code: crate::ErrorCode,
        message: String,
    },
}

impl AnswerEvent {
    /// The SSE event name (`event:` line).
    pub fn name(&self) -> &'static str {
        match self {
            AnswerEvent::Sources(_) => "sources",
            AnswerEvent::Delta(_) => "delta",
            AnswerEvent::Grounding(_) => "grounding",
            AnswerEvent::Done(_) => "done",
            AnswerEvent::Error { .. } => "error",
        }
    }
}

/// Where the time of one query went, in milliseconds (reported as `Server-Timing` over HTTP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    pub embed_ms: f64,
    pub search_ms: f64,
    /// From the start of generation to its last token (0 when no model was asked).
    pub generate_ms: f64,
    /// From the start of generation to its first token.
    pub first_token_ms: f64,
    pub total_ms: f64,
}
