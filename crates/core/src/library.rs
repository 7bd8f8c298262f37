//! Documents and answer traces as the API manages them: listing, reading, uploading and
//! deleting documents, and the stored trace of every answer with its feedback.
//!
//! Every method answers for a [`Caller`]: a document it may not read, and an answer it did not
//! ask for, do not exist for it (the same `NotFound` an unknown id gets).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    Answer, Caller, Chunk, DocumentFormat, DocumentStatus, Language, RetrievalMode, Timings,
    VerityResult,
};

/// A stored document, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentInfo {
    pub id: String,
    pub collection: String,
    /// The file path it was read from, or `upload:/<groups>/<file name>` for an upload.
    pub source: String,
    pub title: String,
    pub format: DocumentFormat,
    pub language: Language,
    pub tags: Vec<String>,
    /// The access groups that may read it; empty: anyone who may read its collection.
    pub groups: Vec<String>,
    /// Bumped every time the document is rewritten.
    pub version: i64,
    pub status: DocumentStatus,
    /// When its file was last modified, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
    pub chunk_count: usize,
}

/// A document with its chunks, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentDetail {
    #[serde(flatten)]
    pub document: DocumentInfo,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub chunks: Vec<Chunk>,
}

/// One page of a document listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentPage {
    pub documents: Vec<DocumentInfo>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentQuery {
    /// The collection to list; the default collection when absent.
    pub collection: Option<String>,
    pub limit: usize,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A document sent to the API: a file's bytes, or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The default collection when absent.
    pub collection: Option<String>,
    /// The file's name (no directories): what its format is guessed from (after its content)
    /// and what its source is named after.
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// Who may read it; `None`: the collection's default groups.
    pub groups: Option<Vec<String>>,
    pub tags: Vec<String>,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    Added,
    Updated,
    /// The same bytes were already there: nothing was embedded.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadedDocument {
    pub document: DocumentInfo,
    pub status: UploadStatus,
}

#[async_trait]
pub trait Documents: Send + Sync {
    async fn list_documents(
        &self,
        caller: &Caller,
        query: DocumentQuery,
    ) -> VerityResult<DocumentPage>;
    async fn get_document(&self, caller: &Caller, id: &str) -> VerityResult<DocumentDetail>;
    /// Parses, chunks, embeds and indexes a document; it is answerable when this returns.
    async fn upload_document(
        &self,
        caller: &Caller,
        upload: Upload,
    ) -> VerityResult<UploadedDocument>;
    /// Removes a document, its chunks and their vectors.
    async fn delete_document(&self, caller: &Caller, id: &str) -> VerityResult<DocumentInfo>;
}

/// A passage retrieval found for an answer, as its trace records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceCandidate {
    /// 1-based position in the retrieval's ranking (`[n]` in the answer for the passages given
    /// to the generator).
    pub rank: u32,
    pub document_id: String,
    pub chunk_id: String,
    pub title: String,
    pub score: f32,
    pub similarity: f32,
}

/// `up` or `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feedback {
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Seconds since the Unix epoch.
    pub at: i64,
}

/// Everything kept about one answer: what was asked, what retrieval found, what the model was
/// given (by hash), what came back, how long each step took, and the asker's feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerTrace {
    pub id: String,
    /// Who asked (`key:<id>`, `oidc:<subject>`, `local`).
    pub caller: String,
    pub collection: String,
    pub question: String,
    pub mode: RetrievalMode,
    pub candidates: Vec<TraceCandidate>,
    /// SHA-256 of the prompt; `null` when no model was asked.
    pub prompt_hash: Option<String>,
    /// What wrote the answer (`extractive`, `mistralrs:…`, `openai:…`).
    pub generator: String,
    pub answer: Answer,
    pub timings: Timings,
    pub feedback: Option<Feedback>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// When a document this answer drew on was deleted (seconds since the Unix epoch): from
    /// then on the trace keeps the question, the ids and the scores, but no text that could
    /// have come from that document (the answer, its sentences, that document's title and
    /// citations). `null`: nothing was withdrawn.
    #[serde(default)]
    pub redacted_at: Option<i64>,
}

impl AnswerTrace {
    /// Withdraws what this trace holds of the deleted document `document_id` (see
    /// [`AnswerTrace::redacted_at`]); `false`, and nothing changed, if the answer did not draw
    /// on it. The answer's text goes whole: a sentence may paraphrase a passage without citing
    /// it, so no part of it can be proven free of the deleted text.
    pub fn forget_document(&mut self, document_id: &str, at: i64) -> bool {
        let drew_on = self.candidates.iter().any(|c| c.document_id == document_id)
            || self
                .answer
                .citations
                .iter()
                .any(|c| c.document_id == document_id);
        if !drew_on {
            return false;
        }
        for candidate in &mut self.candidates {
            if candidate.document_id == document_id {
                candidate.title.clear();
            }
        }
        self.answer.answer.clear();
        self.answer
            .citations
            .retain(|c| c.document_id != document_id);
        self.answer.grounding.unsupported.clear();
        self.answer.grounding.attributed.clear();
        self.redacted_at = Some(at);
        true
    }
}

#[async_trait]
pub trait AnswerTraces: Send + Sync {
    /// The trace of an answer the caller asked for (any, for an unrestricted admin).
    async fn answer_trace(&self, caller: &Caller, id: &str) -> VerityResult<AnswerTrace>;
    /// Records the caller's rating of one of its answers (replacing an earlier one).
    async fn give_feedback(
        &self,
        caller: &Caller,
        answer_id: &str,
        rating: Rating,
        comment: Option<String>,
    ) -> VerityResult<Feedback>;
}
