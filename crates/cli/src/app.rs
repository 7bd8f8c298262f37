//! The assembled service: settings, metadata store, vector index, embedder, chunker and
//! answerer, wired together for the embedded default. Commands and the HTTP gateway use it.

use std::fs::File;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use verity_core::{
    Answer, AnswerService, AnswerStream, AnswerTrace, Caller, CollectionInfo, Collections,
    Embedder, MetadataFilter, QueryRequest, Readiness, RetrievalMode, RetrievedChunk, SearchFilter,
    SearchQuery, Timings, VectorIndex, VerityError, VerityResult, detect_language, parse_day,
    policy, validate_collection_name, validate_group_name,
};
use verity_embed::{FastEmbedder, find_onnxruntime};
use verity_generate::{
    AnswerConfig, Answerer, ExtractiveAnswerer, ExtractiveConfig, GenerationParams, Generator,
    OpenAiConfig, OpenAiGenerator,
};
use verity_ingest::Chunker;
use verity_mistralrs::{MistralRsConfig, MistralRsGenerator};
use verity_retrieve::{EdgeIndex, INDEX_FORMAT, QdrantServerIndex};
use verity_store::Store;

use crate::settings::{GenerationBackend, Settings};

/// Verity on one data directory. Holds an exclusive lock on the directory while open: the
/// embedded vector index must not be opened by two processes at once.
pub struct Verity {
    pub settings: Settings,
    pub store: Store,
    pub index: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    pub chunker: Arc<Chunker>,
    pub answerer: Arc<Answerer>,
    /// When old answer traces were last deleted (seconds since the Unix epoch).
    /// Serialises the writes and deletes of each document in this process.
    pub(crate) document_locks: crate::locks::DocumentLocks,
    _lock: File,
}

impl Verity {
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
        let lock = lock_data_dir(&settings)?;

        let model_dir = settings.find_model_dir()?;
        let onnxruntime = find_onnxruntime(settings.embed.onnxruntime.as_deref())?;
        let embedder =
            FastEmbedder::new(&settings.embedder_config(model_dir.clone(), onnxruntime))?;
        let chunker = Chunker::from_model_dir(&model_dir, settings.chunker_config())
            .map_err(VerityError::Config)?;
        let index: Arc<dyn VectorIndex> = match &settings.index.qdrant_url {
            Some(url) => Arc::new(
                QdrantServerIndex::connect(
                    url,
                    std::env::var("VERITY_QDRANT_API_KEY")
                        .ok()
                        .filter(|k| !k.is_empty()),
                    &settings.index.qdrant_collection,
                    embedder.dimension(),
                )
                .await?,
            ),
            None => Arc::new(EdgeIndex::open(
                &settings.index_path(),
                embedder.dimension(),
            )?),
        };
        let store = match &settings.database.url {
            Some(url) => Store::connect(url).await?,
            None => Store::open_sqlite(&settings.database_path()).await?,
        };
        let answerer = Arc::new(answerer(&settings, None));
        let document_locks = match store.backend() {
            // Replicas and `verity worker` processes may write the same documents.
            verity_store::Backend::Postgres => crate::locks::DocumentLocks::shared(store.clone()),
            verity_store::Backend::Sqlite => crate::locks::DocumentLocks::default(),
        };
        Ok(Self {
            settings,
            store,
            index,
            embedder: Arc::new(embedder),
            chunker: Arc::new(chunker),
            answerer,
            document_locks,
            _lock: lock,
        })
    }

    /// Connects the language model the settings name (loading a local one can take a while);
    /// until then, and with the `extractive` backend, answers are extractive.
    pub async fn enable_generation(&mut self) -> anyhow::Result<()> {
        let generator = connect_generator(&self.settings).await?;
        if let Some(generator) = &generator {
            tracing::info!(generator = %generator.name(), "answers are generated and verified");
        }
        self.answerer = Arc::new(answerer(&self.settings, generator));
        Ok(())
    }

    /// Identifies how chunks were made: documents ingested with another model or chunk size
    /// are re-chunked and re-embedded even if their bytes did not change.
    pub fn pipeline_fingerprint(&self) -> String {
        // The passage prefix changes every vector; it is named only when there is one, so the
        // fingerprints of models without (all-MiniLM-L6-v2) stay as they were.
        let prefix = match self.settings.embed_model().passage_prefix {
            "" => String::new(),
            prefix => format!(";passage_prefix={prefix:?}"),
        };
        format!(
            "model={};max_length={}{prefix};target_tokens={};max_tokens={};index={}",
            self.embedder.model_name(),
            self.settings.embed_max_length(),
            self.chunker.config().target_tokens,
            self.chunker.config().max_tokens,
            INDEX_FORMAT
        )
    }

    /// Checks a request and resolves what to search (collection and metadata filter), how many
    /// passages, and in which mode.
    async fn resolve(
        &self,
        caller: &Caller,
        request: &QueryRequest,
    ) -> VerityResult<(SearchFilter, usize, RetrievalMode)> {
        let question = request.question.trim();
        if question.is_empty() {
            return Err(VerityError::invalid(
                "question",
                "question is empty: send a non-empty \"question\"",
            ));
        }
        let limit = self.settings.query.max_question_chars;
        let length = question.chars().count();
        if length > limit {
            return Err(VerityError::invalid(
                "question",
                format!("question is {length} characters long; the limit is {limit}"),
            ));
        }
        let max_top_k = self.settings.query.max_top_k;
        let top_k = request.top_k.unwrap_or(self.settings.query.top_k);
        if !(1..=max_top_k).contains(&top_k) {
            return Err(VerityError::invalid(
                "top_k",
                format!("top_k must be between 1 and {max_top_k}, got {top_k}"),
            ));
        }
        let collection = self
            .usable_collection(caller, request.collection.as_deref())
            .await?;
        let mut filter = SearchFilter::collection(collection);
        filter.groups = caller.groups.clone();
        if let Some(metadata) = &request.filter {
            apply_metadata_filter(&mut filter, metadata)?;
        }
        let mode = request.mode.unwrap_or(self.settings.query.mode);
        Ok((filter, top_k as usize, mode))
    }

    /// The `top_k` best passages for `question` among those `filter` allows, best first.
    pub async fn retrieve(
        &self,
        question: &str,
        filter: &SearchFilter,
        top_k: usize,
        mode: RetrievalMode,
    ) -> VerityResult<(Vec<RetrievedChunk>, Timings)> {
        let started = Instant::now();
        let embedder = Arc::clone(&self.embedder);
        let text = question.to_string();
        // Embedding is CPU-bound: keep it off the async workers that serve other requests.
        let vector = tokio::task::spawn_blocking(move || embedder.embed_query(&text))
            .await
            .map_err(|e| VerityError::internal("embed", e))??;
        let embedded = Instant::now();
        let query = SearchQuery {
            text: question.to_string(),
            vector,
            language: detect_language(question),
            mode,
        };
        let passages = self.index.search(&query, filter, top_k).await?;
        let searched = Instant::now();
        TOP_SIMILARITY.observe(passages.first().map_or(0.0, |p| f64::from(p.similarity)));
        let timings = Timings {
            embed_ms: ms(embedded - started),
            search_ms: ms(searched - embedded),
            total_ms: ms(searched - started),
            ..Timings::default()
        };
        Ok((passages, timings))
    }
}

/// How close the best passage of each question was: a drift in this distribution (new kinds
/// of questions, stale documents) shows before complaints do.
static TOP_SIMILARITY: LazyLock<prometheus::Histogram> = LazyLock::new(|| {
    prometheus::register_histogram!(
        "verity_retrieval_top_similarity",
        "Cosine similarity of each question's best retrieved passage (0 when none was found)",
        vec![0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    .expect("metric registers once")
});

/// Checks a request's metadata filter and adds its conditions to `filter`.
fn apply_metadata_filter(filter: &mut SearchFilter, metadata: &MetadataFilter) -> VerityResult<()> {
    if let Some(prefix) = &metadata.source_prefix {
        if !prefix.starts_with('/') || prefix.contains("/../") || prefix.ends_with("/..") {
            return Err(VerityError::invalid(
                "filter.source_prefix",
                format!(
                    "source_prefix must be an absolute directory path like \"/srv/kb/hr\", got {prefix:?}"
                ),
            ));
        }
        let trimmed = prefix.trim_end_matches('/');
        filter.source_prefix = Some(if trimmed.is_empty() {
            "/".to_string()
        } else {
            trimmed.to_string()
        });
    }
    if let Some(tags) = &metadata.tags {
        if tags.is_empty() || tags.iter().any(|t| t.trim().is_empty()) {
            return Err(VerityError::invalid(
                "filter.tags",
                "tags must be a non-empty list of non-empty strings",
            ));
        }
        filter.tags = tags.clone();
    }
    filter.language = metadata.language;
    let day = |field: &str, value: &Option<String>| -> VerityResult<Option<i64>> {
        value
            .as_deref()
            .map(|v| {
                parse_day(v).ok_or_else(|| {
                    VerityError::invalid(
                        format!("filter.{field}"),
                        format!("{field} must be a date written YYYY-MM-DD, got {v:?}"),
                    )
                })
            })
            .transpose()
    };
    filter.modified_from = day("modified_after", &metadata.modified_after)?;
    filter.modified_until = day("modified_before", &metadata.modified_before)?;
    if let (Some(from), Some(until)) = (filter.modified_from, filter.modified_until)
        && from >= until
    {
        return Err(VerityError::invalid(
            "filter",
            "modified_after must be earlier than modified_before",
        ));
    }
    Ok(())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn lock_data_dir(settings: &Settings) -> anyhow::Result<File> {
    let path = settings.data_dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the data directory {} is in use by another verity process (a running `verity serve`?); \
             stop it first, ask it over HTTP (POST /v1/query), or use another --data-dir",
            settings.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Without a measured speed (a remote engine, or no model), a derived deadline is this.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request may wait for a slot and generate: `generation.timeout_seconds`, or when
/// that is 0, derived from the model's speed measured at load — one and a half times what the
/// longest answer (`max_tokens`) after a full prompt (`top_k` sources of the largest chunk size,
/// plus the rules) takes, plus 10 s — so that a slow machine's first answer is not cut off.
pub fn generation_timeout(settings: &Settings, generator: Option<&dyn Generator>) -> Duration {
    let generation = &settings.generation;
    if generation.timeout_seconds > 0 {
        return Duration::from_secs(generation.timeout_seconds);
    }
    let Some(generator) = generator else {
        return DEFAULT_TIMEOUT;
    };
    // The rules and the question take about 400 tokens.
    let prompt_tokens = (400 + settings.query.top_k as usize * settings.chunking.max_tokens).min(
        generator
            .context_window()
            .saturating_sub(generation.max_tokens),
    );
    match generator.expected_duration(prompt_tokens, generation.max_tokens) {
        Some(expected) => {
            let timeout = Duration::from_secs((expected.as_secs_f64() * 1.5 + 10.0).ceil() as u64);
            tracing::info!(
                timeout_seconds = timeout.as_secs(),
                prompt_tokens,
                max_tokens = generation.max_tokens,
                "generation.timeout_seconds = 0: deadline derived from the model's measured speed"
            );
            timeout
        }
        None => DEFAULT_TIMEOUT,
    }
}

fn answerer(settings: &Settings, generator: Option<Arc<dyn Generator>>) -> Answerer {
    let generation = &settings.generation;
    let timeout = generation_timeout(settings, generator.as_deref());
    Answerer::new(
        ExtractiveAnswerer::new(ExtractiveConfig {
            abstain_below: settings.abstain_below(),
            min_term_coverage: settings.query.min_term_coverage,
            max_sentences: settings.query.max_sentences,
        }),
        generator,
        AnswerConfig {
            params: GenerationParams {
                max_tokens: generation.max_tokens,
                temperature: generation.temperature,
            },
            min_support: generation.min_support,
            timeout,
            max_concurrent: generation.max_concurrent,
            max_queued: generation.max_queued,
        },
    )
}

/// The language model `generation.backend` names, ready to use; `None` for `extractive`.
pub async fn connect_generator(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Generator>>> {
    let generation = &settings.generation;
    Ok(match generation.backend {
        GenerationBackend::Extractive => None,
        GenerationBackend::Openai => {
            let openai = &generation.openai;
            let mut config = OpenAiConfig::new(
                openai.base_url.clone().unwrap_or_default(),
                openai.model.clone().unwrap_or_default(),
            );
            config.api_key = std::env::var("VERITY_OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty());
            config.context_window = openai.context_window;
            config.stream = openai.stream;
            config.connect_timeout = Duration::from_secs(openai.connect_timeout_seconds);
            config.read_timeout = Duration::from_secs(openai.read_timeout_seconds);
            config.max_retries = openai.max_retries;
            Some(Arc::new(OpenAiGenerator::new(config)?))
        }
        GenerationBackend::Mistralrs => {
            let m = &generation.mistralrs;
            let mut config = MistralRsConfig::new(m.model_dir.clone().unwrap_or_default());
            config.quantization = m.quantization;
            config.paged_attention = m.paged_attention;
            config.max_batch = m.max_batch;
            config.force_cpu = m.force_cpu;
            config.dtype = m.dtype;
            // A deadline derived from the model needs its speed on this machine.
            config.measure_speed = generation.timeout_seconds == 0;
            Some(Arc::new(MistralRsGenerator::load(&config).await?))
        }
    })
}

#[async_trait]
impl Collections for Verity {
    async fn list_collections(&self, caller: &Caller) -> VerityResult<Vec<CollectionInfo>> {
        let mut out = Vec::new();
        for name in self.store.list_collections().await? {
            if !caller.may_use_collection(&name) {
                continue;
            }
            let documents = self
                .store
                .documents_in_collection(&name)
                .await?
                .iter()
                .filter(|d| policy::groups_readable(caller.groups.as_deref(), &d.groups))
                .count();
            out.push(CollectionInfo { name, documents });
        }
        Ok(out)
    }

    async fn create_collection(
        &self,
        caller: &Caller,
        name: &str,
        default_groups: &[String],
    ) -> VerityResult<bool> {
        validate_collection_name(name)?;
        for group in default_groups {
            validate_group_name(group)?;
        }
        if !policy::may_create_collection(caller, name, default_groups) {
            return Err(VerityError::Forbidden(format!(
                "this key may not create the collection {name:?} with these default groups: \
                 it may use only its own collections and give only groups of its own"
            )));
        }
        self.store.create_collection(name, default_groups).await
    }

    async fn delete_collection(&self, caller: &Caller, name: &str) -> VerityResult<usize> {
        let name = self.usable_collection(caller, Some(name)).await?;
        let documents = self.store.documents_in_collection(&name).await?;
        if !policy::may_delete_collection(
            caller,
            &name,
            documents.iter().map(|d| d.groups.as_slice()),
        ) {
            return Err(VerityError::Forbidden(format!(
                "the collection {name:?} holds documents of groups this key may not write: \
                 only a key without group limits may delete it"
            )));
        }
        Verity::delete_collection(self, &name).await
    }
}

#[async_trait]
impl AnswerService for Verity {
    async fn query_stream(
        &self,
        caller: &Caller,
        request: QueryRequest,
    ) -> VerityResult<AnswerStream> {
        let started = Instant::now();
        let (filter, top_k, mode) = self.resolve(caller, &request).await?;
        // Before retrieval: a request over capacity is refused in microseconds.
        let ticket = self.answerer.admit()?;
        let question = request.question.trim().to_string();
        let (passages, timings) = self.retrieve(&question, &filter, top_k, mode).await?;
        if !self.settings.traces.enabled {
            return Ok(self
                .answerer
                .start(ticket, question, passages, timings, started));
        }
        let trace = AnswerTrace {
            id: uuid::Uuid::new_v4().to_string(),
            caller: caller.subject.clone(),
            collection: filter.collections.join(","),
            question: question.clone(),
            mode: mode.as_str().to_string(),
            candidates: crate::library::candidates(&passages),
            prompt_hash: None,
            generator: String::new(),
            answer: Answer::default(),
            timings,
            feedback: None,
            created_at: 0,
            redacted_at: None,
        };
        let events = self
            .answerer
            .start(ticket, question, passages, timings, started);
        Ok(self.traced(events, trace))
    }

    async fn readiness(&self) -> Readiness {
        // Each error names its dependency ("metadata store is unavailable: …").
        let store = self.store.ping().await;
        let index = self.index.check_ready().await;
        let problems: Vec<String> = [store.err(), index.err()]
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect();
        if problems.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Overrides;
    use verity_generate::{ChatMessage, GenerationError, GenerationStats};

    /// A model that says it prefills 100 tokens/s and decodes 10 tokens/s.
    struct Measured;

    #[async_trait]
    impl Generator for Measured {
        fn name(&self) -> String {
            "measured".into()
        }
        fn context_window(&self) -> usize {
            32_768
        }
        fn expected_duration(
            &self,
            prompt_tokens: usize,
            answer_tokens: usize,
        ) -> Option<Duration> {
            Some(Duration::from_secs_f64(
                prompt_tokens as f64 / 100.0 + answer_tokens as f64 / 10.0,
            ))
        }
        async fn generate(
            &self,
            _: &[ChatMessage],
            _: GenerationParams,
            _: tokio::sync::mpsc::Sender<String>,
        ) -> Result<GenerationStats, GenerationError> {
            unreachable!("only its speed is asked")
        }
    }

    fn settings() -> Settings {
        let mut settings = Settings::load(None, &Overrides::default()).unwrap();
        settings.query.top_k = 5;
        settings.chunking.max_tokens = 250;
        settings.generation.max_tokens = 512;
        settings
    }

    #[test]
    fn a_zero_timeout_is_derived_from_the_models_measured_speed() {
        let mut settings = settings();
        settings.generation.timeout_seconds = 0;
        // A full prompt: 400 + 5 × 250 = 1,650 tokens → 16.5 s; 512 tokens → 51.2 s.
        // 1.5 × 67.7 s + 10 s = 111.55 s, rounded up.
        assert_eq!(
            generation_timeout(&settings, Some(&Measured)),
            Duration::from_secs(112)
        );
        // Unknown speed (a remote engine) or no model: the default.
        assert_eq!(generation_timeout(&settings, None), DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_set_timeout_is_kept() {
        let mut settings = settings();
        settings.generation.timeout_seconds = 45;
        assert_eq!(
            generation_timeout(&settings, Some(&Measured)),
            Duration::from_secs(45)
        );
    }
}
