use async_trait::async_trait;

use crate::{
    Answer, AnswerEvent, Caller, Chunk, Language, QueryRequest, SearchQuery, Timings, VerityError,
    VerityResult,
};

/// Turns text into dense vectors. Implementations are CPU- or GPU-bound and synchronous:
/// callers on an async runtime run them where blocking is acceptable.
pub trait Embedder: Send + Sync {
    /// A name that identifies the model (it is part of the ingest fingerprint, so changing the
    /// model re-embeds everything).
    fn model_name(&self) -> &str;
    fn dimension(&self) -> usize;
    /// Embeds passages for indexing, in the order given.
    fn embed_passages(&self, texts: &[String]) -> VerityResult<Vec<Vec<f32>>>;
    /// Embeds one question.
    fn embed_query(&self, text: &str) -> VerityResult<Vec<f32>>;
}

/// A chunk ready for the index: its vector plus the payload a search returns with it.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub collection: String,
    pub title: String,
    pub source: String,
    /// The document's language: selects the BM25 tokenisation of the chunk.
    pub language: Language,
    pub tags: Vec<String>,
    /// The access groups that may read the document; empty: anyone who may read the
    /// collection.
    pub groups: Vec<String>,
    /// When the document's file was last modified, in seconds since the Unix epoch.
    pub modified: Option<i64>,
    pub chunk: Chunk,
    pub vector: Vec<f32>,
}

/// What a search may see. Built by the service from the caller's request and identity, and
/// applied inside the vector query, never after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchFilter {
    /// Collections to search; empty means none (a search with no collection finds nothing).
    pub collections: Vec<String>,
    /// Only documents under this directory.
    pub source_prefix: Option<String>,
    /// Only documents with at least one of these tags (none given: no condition).
    pub tags: Vec<String>,
    pub language: Option<Language>,
    /// Only documents modified at or after this time (seconds since the Unix epoch)…
    pub modified_from: Option<i64>,
    /// …and before this one.
    pub modified_until: Option<i64>,
    /// The caller's access groups: only documents readable by one of them, or by everyone,
    /// are found. `None`: no access condition (authentication off, or the CLI on its own data).
    pub groups: Option<Vec<String>>,
}

impl SearchFilter {
    pub fn collection(name: impl Into<String>) -> Self {
        Self {
            collections: vec![name.into()],
            ..Self::default()
        }
    }
}

/// A chunk found by a search, with its score and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedChunk {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub heading_path: Vec<String>,
    /// For paged formats (PDF), the page the chunk starts on, from 1.
    pub page: Option<u32>,
    /// The score in the search's mode (see [`crate::Citation::score`]).
    pub score: f32,
    /// Cosine similarity of the question and the chunk.
    pub similarity: f32,
}

/// A point of the index, as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPoint {
    pub chunk_id: String,
    pub document_id: String,
    /// Whether searches can find it (see [`VectorIndex::publish_document`]).
    pub visible: bool,
}

/// The vector index. The metadata store is the source of truth; an index can be rebuilt from it.
///
/// Chunks are written hidden and made visible per document once the store holds the document
/// as active, so that a crash at any point never leaves a searchable chunk the store does not
/// hold as active.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces chunks (by chunk id, so retries are idempotent), hidden from searches.
    async fn upsert(&self, chunks: &[IndexedChunk]) -> VerityResult<()>;
    /// Makes every chunk of a document visible to searches.
    async fn publish_document(&self, document_id: &str) -> VerityResult<()>;
    /// Every point of a collection, visible or not.
    async fn list_points(&self, collection: &str) -> VerityResult<Vec<IndexedPoint>>;
    /// Deletes chunks by id.
    async fn delete_chunks(&self, chunk_ids: &[String]) -> VerityResult<()>;
    /// Deletes every chunk of a document except those whose ids are in `keep`.
    async fn delete_document_chunks(&self, document_id: &str, keep: &[String]) -> VerityResult<()>;
    /// The `limit` best chunks for the query among those the filter allows, best first, in
    /// the query's mode.
    async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter,
        limit: usize,
    ) -> VerityResult<Vec<RetrievedChunk>>;
    /// How many chunks the filter allows.
    async fn count(&self, filter: &SearchFilter) -> VerityResult<usize>;
    /// Whether the index can be used now (for `/readyz`); an embedded index always can.
    async fn check_ready(&self) -> VerityResult<()> {
        Ok(())
    }
    /// Makes every write so far durable: a crash after this loses none of them.
    async fn persist(&self) -> VerityResult<()>;
    /// Makes written data durable and search-efficient (flush, build indexes).
    async fn optimize(&self) -> VerityResult<()>;
}

/// Whether the service can answer, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// A streamed answer: events in the order [`AnswerEvent`] describes. Dropping the receiver
/// cancels the generation behind it.
pub type AnswerStream = tokio::sync::mpsc::Receiver<AnswerEvent>;

/// Answers questions. The gateway speaks HTTP to clients and this trait to the rest of Verity.
#[async_trait]
pub trait AnswerService: Send + Sync {
    /// Starts answering. Errors that concern the whole request (a bad field, an unknown
    /// collection, too many requests) come back here, before any event.
    async fn query_stream(
        &self,
        caller: &Caller,
        request: QueryRequest,
    ) -> VerityResult<AnswerStream>;

    /// The whole answer at once: the streamed answer's `Grounding` event and its timings.
    async fn query(
        &self,
        caller: &Caller,
        request: QueryRequest,
    ) -> VerityResult<(Answer, Timings)> {
        collect_answer(self.query_stream(caller, request).await?).await
    }

    async fn readiness(&self) -> Readiness;
}

/// A streamed answer collected: its `Grounding` event and its timings.
pub async fn collect_answer(mut events: AnswerStream) -> VerityResult<(Answer, Timings)> {
    let mut answer = None;
    while let Some(event) = events.recv().await {
        match event {
            AnswerEvent::Grounding(a) => answer = Some(a),
            AnswerEvent::Done(timings) => {
                return answer.map(|a| (a, timings)).ok_or_else(|| {
                    VerityError::internal("answering", "the answer ended without grounding")
                });
            }
            AnswerEvent::Error { code, message } => {
                return Err(VerityError::internal(
                    "answering",
                    format!("{}: {message}", code.as_str()),
                ));
            }
            AnswerEvent::Sources(_) | AnswerEvent::Delta(_) => {}
        }
    }
    Err(VerityError::internal(
        "answering",
        "the answer stream ended before it was done",
    ))
}
