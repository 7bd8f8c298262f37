//! Verity's use cases, built from injected components: asking ([`ask`]), ingesting
//! ([`pipeline`]), documents, traces and feedback ([`library`]), ingest jobs ([`jobs`]) and the
//! worker that runs them ([`worker`]), collections, and reconciling the index with the store
//! ([`reconcile`]).
//!
//! Every authorization decision is made here, at the start of each use case, with the rules of
//! [`verity_core::policy`]: the HTTP gateway and the CLI only authenticate and pass the
//! [`verity_core::Caller`] on, so neither can forget a check.
//!
//! Nothing here reads settings files, parses arguments or draws progress bars: `verity-cli`
//! turns its settings into [`Components`] and a [`ServiceConfig`] and calls [`Verity::new`].

pub mod ask;
pub mod jobs;
pub mod library;
mod locks;
pub mod pipeline;
pub mod reconcile;
#[cfg(feature = "testing")]
pub mod testing;
mod uploads;
pub mod worker;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use verity_core::{Embedder, Fusion, RetrievalMode, VectorIndex};
use verity_generate::Answerer;
use verity_ingest::{Chunker, ParseLimits};
use verity_store::{Backend, Store};

pub use library::start_trace_retention;
pub use worker::start_serve_worker;

/// The parts Verity is built from; each is chosen by whoever wires the service (the CLI from
/// its settings, a test with fakes).
pub struct Components {
    /// Documents, chunks, jobs, keys and traces.
    pub store: Store,
    /// The vector and BM25 index (Qdrant Edge, a Qdrant server).
    pub index: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    /// Cuts documents into passages with the embedder's tokenizer.
    pub chunker: Arc<Chunker>,
    /// Writes (or extracts) and verifies answers.
    pub answerer: Arc<Answerer>,
    /// The data directory's lock file, held as long as the service lives (the embedded index
    /// must not be opened by two processes); `None` where nothing needs holding.
    pub data_dir_lock: Option<File>,
}

/// What the use cases need to know besides their components.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub query: QueryConfig,
    /// Whether each answer's trace (question, candidates, answer) is recorded.
    pub traces_enabled: bool,
    /// Traces older than this many days are deleted.
    pub trace_retention_days: u32,
    /// Limits every file is parsed within (size, pages, decompressed bytes, time).
    pub parse_limits: ParseLimits,
    /// The folder server-side path jobs may read from; `None`: path jobs are refused.
    pub allowed_root: Option<PathBuf>,
    /// Where uploads wait for the worker (under `uploads/`).
    pub data_dir: PathBuf,
    /// The embedder's input limit in its tokens and the prefix it puts before passages, and the
    /// index's data format: with the model name and chunk sizes, they make the fingerprint
    /// that decides whether stored documents must be embedded again.
    pub embed_max_length: usize,
    pub passage_prefix: String,
    pub index_format: String,
}

/// Defaults and limits of questions.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// The collection a request without one asks.
    pub default_collection: String,
    pub mode: RetrievalMode,
    /// How hybrid searches merge their dense and BM25 candidates.
    pub fusion: Fusion,
    pub top_k: u32,
    pub max_top_k: u32,
    pub max_question_chars: usize,
}

/// Verity on one knowledge base: the use cases, over the components it was built from.
pub struct Verity {
    config: ServiceConfig,
    store: Store,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn Embedder>,
    chunker: Arc<Chunker>,
    answerer: Arc<Answerer>,
    /// Serialises the writes and deletes of each document (across processes on Postgres).
    document_locks: locks::DocumentLocks,
    _data_dir_lock: Option<File>,
}

impl Verity {
    pub fn new(components: Components, config: ServiceConfig) -> Self {
        let document_locks = match components.store.backend() {
            // Replicas and `verity worker` processes may write the same documents.
            Backend::Postgres => locks::DocumentLocks::shared(components.store.clone()),
            Backend::Sqlite => locks::DocumentLocks::default(),
        };
        Self {
            config,
            store: components.store,
            index: components.index,
            embedder: components.embedder,
            chunker: components.chunker,
            answerer: components.answerer,
            document_locks,
            _data_dir_lock: components.data_dir_lock,
        }
    }

    /// Replaces the answerer (once a language model is loaded, which can take a while).
    pub fn set_answerer(&mut self, answerer: Arc<Answerer>) {
        self.answerer = answerer;
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The metadata store, for administration that is not a use case of its own (keys, the
    /// CLI's reports) and for tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn index(&self) -> &Arc<dyn VectorIndex> {
        &self.index
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    pub fn answerer(&self) -> &Answerer {
        &self.answerer
    }
}
