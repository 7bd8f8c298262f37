//! Asking: a question checked and resolved against what its caller may read, the passages
//! retrieved, the answer generated and verified, and its trace recorded; and collections.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use async_trait::async_trait;
use verity_core::{
    Answer, AnswerService, AnswerStream, AnswerTrace, Caller, CollectionInfo, Collections,
    MetadataFilter, QueryRequest, Readiness, RetrievalMode, RetrievedChunk, Scope, SearchFilter,
    SearchQuery, Timings, VerityError, VerityResult, detect_language, parse_day, policy,
    validate_collection_name, validate_group_name,
};

use crate::Verity;

impl Verity {
    /// Identifies how chunks were made: documents ingested with another model or chunk size
    /// are re-chunked and re-embedded even if their bytes did not change.
    pub fn pipeline_fingerprint(&self) -> String {
        // The passage prefix changes every vector; it is named only when there is one, so the
        // fingerprints of models without (all-MiniLM-L6-v2) stay as they were.
        let prefix = match self.config.passage_prefix.as_str() {
            "" => String::new(),
            prefix => format!(";passage_prefix={prefix:?}"),
        };
        format!(
            "model={};max_length={}{prefix};target_tokens={};max_tokens={};index={}",
            self.embedder.model_name(),
            self.config.embed_max_length,
            self.chunker.config().target_tokens,
            self.chunker.config().max_tokens,
            self.config.index_format
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
        let limit = self.config.query.max_question_chars;
        let length = question.chars().count();
        if length > limit {
            return Err(VerityError::invalid(
                "question",
                format!("question is {length} characters long; the limit is {limit}"),
            ));
        }
        let max_top_k = self.config.query.max_top_k;
        let top_k = request.top_k.unwrap_or(self.config.query.top_k);
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
        let mode = request.mode.unwrap_or(self.config.query.mode);
        Ok((filter, top_k as usize, mode))
    }

    /// The `top_k` best passages for `question` among those `filter` allows that the caller
    /// may read, best first (retrieval alone, no answer: the evaluations use it).
    pub async fn retrieve(
        &self,
        caller: &Caller,
        question: &str,
        filter: &SearchFilter,
        top_k: usize,
        mode: RetrievalMode,
    ) -> VerityResult<(Vec<RetrievedChunk>, Timings)> {
        caller.require(Scope::Query)?;
        if let Some(name) = filter
            .collections
            .iter()
            .find(|name| !caller.may_use_collection(name))
        {
            return Err(VerityError::NotFound {
                what: "collection",
                name: name.clone(),
            });
        }
        let mut filter = filter.clone();
        filter.groups.clone_from(&caller.groups);
        self.search(question, &filter, top_k, mode).await
    }

    /// [`Self::retrieve`] under a filter already limited to what its caller may read.
    async fn search(
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
            fusion: self.config.query.fusion,
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

#[async_trait]
impl Collections for Verity {
    async fn list_collections(&self, caller: &Caller) -> VerityResult<Vec<CollectionInfo>> {
        caller.require(Scope::Query)?;
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
        caller.require(Scope::Admin)?;
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
        caller.require(Scope::Admin)?;
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
        self.remove_collection(&name).await
    }
}

#[async_trait]
impl AnswerService for Verity {
    async fn query_stream(
        &self,
        caller: &Caller,
        request: QueryRequest,
    ) -> VerityResult<AnswerStream> {
        caller.require(Scope::Query)?;
        let started = Instant::now();
        let (filter, top_k, mode) = self.resolve(caller, &request).await?;
        // Before retrieval: a request over capacity is refused in microseconds.
        let ticket = self.answerer.admit()?;
        let question = request.question.trim().to_string();
        let (passages, timings) = self.search(&question, &filter, top_k, mode).await?;
        if !self.config.traces_enabled {
            return Ok(self
                .answerer
                .start(ticket, question, passages, timings, started));
        }
        let trace = AnswerTrace {
            id: uuid::Uuid::new_v4().to_string(),
            caller: caller.subject.clone(),
            collection: filter.collections.join(","),
            question: question.clone(),
            mode,
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
