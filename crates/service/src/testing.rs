//! In-memory stand-ins for the embedder and the vector index (feature `testing`), so that the
//! use cases — write order, leases, access rules — are tested in milliseconds, without the ONNX
//! model or Qdrant. The store stays real (SQLite in a temporary directory): it is fast, and its
//! transactions are part of what is tested.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use verity_core::{
    Embedder, IndexedChunk, IndexedPoint, RetrievalMode, RetrievedChunk, SearchFilter, SearchQuery,
    VectorIndex, VerityError, VerityResult, policy,
};
use verity_generate::{Answerer, ExtractiveAnswerer, ExtractiveConfig};
use verity_ingest::{Chunker, ChunkerConfig, ParseLimits};
use verity_store::Store;

use crate::{Components, QueryConfig, ServiceConfig, Verity};

/// Embeds text as a normalised bag of hashed words: texts sharing words get similar vectors,
/// deterministically, in microseconds.
#[derive(Debug, Default)]
pub struct HashEmbedder;

impl HashEmbedder {
    pub const DIMENSION: usize = 64;

    fn embed(text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; Self::DIMENSION];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            // FNV-1a: stable across runs and platforms, unlike the std hasher's random keys.
            let hash = word
                .to_lowercase()
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            vector[(hash % Self::DIMENSION as u64) as usize] += 1.0;
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        vector
    }
}

impl Embedder for HashEmbedder {
    fn model_name(&self) -> &str {
        "hashed-words"
    }
    fn dimension(&self) -> usize {
        Self::DIMENSION
    }
    fn embed_passages(&self, texts: &[String]) -> VerityResult<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| Self::embed(t)).collect())
    }
    fn embed_query(&self, text: &str) -> VerityResult<Vec<f32>> {
        Ok(Self::embed(text))
    }
}

/// One call the index received, in order: what a test of the write order reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexCall {
    /// Chunks written (hidden), by document id.
    Upsert(Vec<String>),
    Publish(String),
    DeleteChunks(Vec<String>),
    DeleteDocumentChunks {
        document_id: String,
        kept: usize,
    },
}

#[derive(Debug, Default)]
struct MemoryState {
    points: HashMap<String, (IndexedChunk, bool)>,
    calls: Vec<IndexCall>,
    fail_upserts: bool,
}

/// A vector index in memory: hidden writes, publication per document, and the filters of
/// [`SearchFilter`] applied as the real indexes apply them. Searches rank by cosine
/// similarity whatever the mode (the fusion of dense and BM25 is the real indexes' business).
#[derive(Debug, Default)]
pub struct MemoryIndex {
    state: Mutex<MemoryState>,
}

impl MemoryIndex {
    fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<IndexCall> {
        self.state().calls.clone()
    }

    /// Makes every later upsert fail (an index that went away mid-write) or work again.
    pub fn fail_upserts(&self, fail: bool) {
        self.state().fail_upserts = fail;
    }

    /// The chunk ids of a document, with whether each is visible.
    pub fn points_of(&self, document_id: &str) -> Vec<(String, bool)> {
        let mut points: Vec<_> = self
            .state()
            .points
            .values()
            .filter(|(c, _)| c.chunk.document_id == document_id)
            .map(|(c, visible)| (c.chunk.id.clone(), *visible))
            .collect();
        points.sort();
        points
    }
}

fn allows(filter: &SearchFilter, chunk: &IndexedChunk) -> bool {
    filter.collections.contains(&chunk.collection)
        && policy::groups_readable(filter.groups.as_deref(), &chunk.groups)
        && filter.source_prefix.as_deref().is_none_or(|prefix| {
            prefix == "/"
                || chunk.source == prefix
                || chunk.source.starts_with(&format!("{prefix}/"))
        })
        && (filter.tags.is_empty() || filter.tags.iter().any(|t| chunk.tags.contains(t)))
        && filter.language.is_none_or(|l| l == chunk.language)
        && filter
            .modified_from
            .is_none_or(|from| chunk.modified.is_some_and(|m| m >= from))
        && filter
            .modified_until
            .is_none_or(|until| chunk.modified.is_some_and(|m| m < until))
}

#[async_trait]
impl VectorIndex for MemoryIndex {
    async fn upsert(&self, chunks: &[IndexedChunk]) -> VerityResult<()> {
        let mut state = self.state();
        if state.fail_upserts {
            return Err(VerityError::Unavailable {
                component: "vector index",
                message: "the in-memory index was told to fail upserts".into(),
            });
        }
        let mut documents: Vec<String> =
            chunks.iter().map(|c| c.chunk.document_id.clone()).collect();
        documents.dedup();
        state.calls.push(IndexCall::Upsert(documents));
        for chunk in chunks {
            state
                .points
                .insert(chunk.chunk.id.clone(), (chunk.clone(), false));
        }
        Ok(())
    }

    async fn publish_document(&self, document_id: &str) -> VerityResult<()> {
        let mut state = self.state();
        state
            .calls
            .push(IndexCall::Publish(document_id.to_string()));
        for (chunk, visible) in state.points.values_mut() {
            if chunk.chunk.document_id == document_id {
                *visible = true;
            }
        }
        Ok(())
    }

    async fn list_points(&self, collection: &str) -> VerityResult<Vec<IndexedPoint>> {
        Ok(self
            .state()
            .points
            .values()
            .filter(|(c, _)| c.collection == collection)
            .map(|(c, visible)| IndexedPoint {
                chunk_id: c.chunk.id.clone(),
                document_id: c.chunk.document_id.clone(),
                visible: *visible,
            })
            .collect())
    }

    async fn delete_chunks(&self, chunk_ids: &[String]) -> VerityResult<()> {
        let mut state = self.state();
        state
            .calls
            .push(IndexCall::DeleteChunks(chunk_ids.to_vec()));
        for id in chunk_ids {
            state.points.remove(id);
        }
        Ok(())
    }

    async fn delete_document_chunks(&self, document_id: &str, keep: &[String]) -> VerityResult<()> {
        let mut state = self.state();
        state.calls.push(IndexCall::DeleteDocumentChunks {
            document_id: document_id.to_string(),
            kept: keep.len(),
        });
        state
            .points
            .retain(|id, (c, _)| c.chunk.document_id != document_id || keep.contains(id));
        Ok(())
    }

    async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter,
        limit: usize,
    ) -> VerityResult<Vec<RetrievedChunk>> {
        let state = self.state();
        let mut found: Vec<RetrievedChunk> = state
            .points
            .values()
            .filter(|(c, visible)| *visible && allows(filter, c))
            .map(|(c, _)| {
                let similarity: f32 = c.vector.iter().zip(&query.vector).map(|(a, b)| a * b).sum();
                RetrievedChunk {
                    chunk_id: c.chunk.id.clone(),
                    document_id: c.chunk.document_id.clone(),
                    collection: c.collection.clone(),
                    title: c.title.clone(),
                    source: c.source.clone(),
                    start: c.chunk.start,
                    end: c.chunk.end,
                    text: c.chunk.text.clone(),
                    heading_path: c.chunk.heading_path.clone(),
                    page: c.chunk.page,
                    score: similarity,
                    similarity,
                }
            })
            .collect();
        found.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.chunk_id.cmp(&b.chunk_id))
        });
        found.truncate(limit);
        Ok(found)
    }

    async fn count(&self, filter: &SearchFilter) -> VerityResult<usize> {
        Ok(self
            .state()
            .points
            .values()
            .filter(|(c, visible)| *visible && allows(filter, c))
            .count())
    }

    async fn persist(&self) -> VerityResult<()> {
        Ok(())
    }

    async fn optimize(&self) -> VerityResult<()> {
        Ok(())
    }
}

/// Verity on a real SQLite store in `data_dir`, the in-memory index and embedder, a
/// word-counting chunker and the extractive answerer; returns the index too, for inspection.
pub async fn verity(data_dir: &Path) -> (Verity, Arc<MemoryIndex>) {
    std::fs::create_dir_all(data_dir).expect("the test's data directory can be made");
    let store = Store::open_sqlite(&data_dir.join("verity.db"))
        .await
        .expect("a new SQLite store opens");
    let index = Arc::new(MemoryIndex::default());
    let components = Components {
        store,
        index: index.clone(),
        embedder: Arc::new(HashEmbedder),
        chunker: Arc::new(Chunker::whitespace(ChunkerConfig::default())),
        answerer: Arc::new(Answerer::new(
            ExtractiveAnswerer::new(ExtractiveConfig {
                abstain_below: 0.0,
                abstain_below_across_languages: 0.0,
                min_term_coverage: 0.0,
                max_sentences: 3,
            }),
            None,
            Default::default(),
        )),
        data_dir_lock: None,
    };
    (Verity::new(components, config(data_dir)), index)
}

/// The service's settings as the defaults have them, for a data directory.
pub fn config(data_dir: &Path) -> ServiceConfig {
    ServiceConfig {
        query: QueryConfig {
            default_collection: "default".into(),
            mode: RetrievalMode::Hybrid,
            fusion: verity_core::Fusion::default(),
            top_k: 5,
            max_top_k: 50,
            max_question_chars: 2_000,
        },
        traces_enabled: true,
        trace_retention_days: 30,
        parse_limits: ParseLimits::default(),
        allowed_root: None,
        data_dir: data_dir.to_path_buf(),
        embed_max_length: 512,
        passage_prefix: String::new(),
        index_format: "memory".into(),
    }
}
