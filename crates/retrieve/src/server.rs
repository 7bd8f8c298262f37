//! The vector index on a Qdrant server (gRPC, `qdrant-client`): the same points, payload, filters,
//! BM25 vectors (encoded here with the same Qdrant BM25 as on Edge) and hybrid query as
//! [`crate::EdgeIndex`], so both give the same results on the same data. Every write waits for
//! the server to apply it (`wait: true`): the ingest's ordering between store and index holds.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use qdrant_client::qdrant::vector_output::Vector as OutputVector;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, FieldType, Filter, Modifier, PointId, PointStruct, PointsIdsList,
    PrefetchQueryBuilder, Query, QueryPointsBuilder, Range, RrfBuilder, ScoredPoint,
    ScrollPointsBuilder, SetPayloadPointsBuilder, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, Value as QdrantValue, VectorInput, VectorParamsBuilder,
    VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::{Value, json};
use verity_core::{
    Fusion, IndexedChunk, IndexedPoint, RetrievalMode, RetrievedChunk, SearchFilter, SearchQuery,
    VectorIndex, VerityError, VerityResult,
};

use crate::bm25::Bm25Encoders;
use crate::edge::{DENSE_VECTOR, RRF_K, SPARSE_VECTOR};
use crate::points::{
    FILTERED_FIELDS, FieldKind, PREFETCH_CANDIDATES, SCROLL_PAGE, TIE_MARGIN, bm25_text, cosine,
    in_stable_order, indexed_point, payload, readable_groups, retrieved_chunk,
};

fn field_type_of(kind: FieldKind) -> FieldType {
    match kind {
        FieldKind::Keyword => FieldType::Keyword,
        FieldKind::Integer => FieldType::Integer,
        FieldKind::Bool => FieldType::Bool,
    }
}

/// Every Verity collection's chunks in one Qdrant collection on a server.
#[derive(Clone)]
pub struct QdrantServerIndex {
    client: Arc<Qdrant>,
    collection: String,
    dimension: usize,
    bm25: Arc<Bm25Encoders>,
}

impl std::fmt::Debug for QdrantServerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantServerIndex")
            .field("collection", &self.collection)
            .field("dimension", &self.dimension)
            .finish()
    }
}

fn server_error(err: impl std::fmt::Display) -> VerityError {
    VerityError::unavailable("vector index", format!("Qdrant server: {err}"))
}

impl QdrantServerIndex {
    /// Connects to the server at `url` (gRPC, e.g. `http://qdrant:6334`) and creates the Qdrant
    /// collection `collection` for vectors of `dimension` if it does not exist.
    pub async fn connect(
        url: &str,
        api_key: Option<String>,
        collection: &str,
        dimension: usize,
    ) -> VerityResult<Self> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .build()
            .map_err(|e| VerityError::Config(format!("bad Qdrant URL {url:?}: {e}")))?;
        let exists = client.collection_exists(collection).await.map_err(|e| {
            VerityError::unavailable(
                "vector index",
                format!("cannot reach the Qdrant server at {url}: {e}"),
            )
        })?;
        if !exists {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(
                DENSE_VECTOR,
                VectorParamsBuilder::new(dimension as u64, qdrant_client::qdrant::Distance::Cosine),
            );
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                SPARSE_VECTOR,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(vectors)
                        .sparse_vectors_config(sparse),
                )
                .await
                .map_err(server_error)?;
        }
        // Always: a collection from before a filtered field existed gets its index now
        // (creating an index that exists is a no-op).
        for (field, kind) in FILTERED_FIELDS {
            client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(
                        collection,
                        *field,
                        field_type_of(*kind),
                    )
                    .wait(true),
                )
                .await
                .map_err(server_error)?;
        }
        let info = client
            .collection_info(collection)
            .await
            .map_err(server_error)?;
        let size = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| match v.config? {
                qdrant_client::qdrant::vectors_config::Config::ParamsMap(map) => {
                    map.map.get(DENSE_VECTOR).map(|p| p.size)
                }
                qdrant_client::qdrant::vectors_config::Config::Params(p) => Some(p.size),
            });
        if size != Some(dimension as u64) {
            return Err(VerityError::Config(format!(
                "the Qdrant collection {collection:?} holds vectors of dimension {size:?} but the embedding model gives {dimension}"
            )));
        }
        Ok(Self {
            client: Arc::new(client),
            collection: collection.to_string(),
            dimension,
            bm25: Arc::new(Bm25Encoders::new()?),
        })
    }
}

fn point_id(chunk_id: &str) -> PointId {
    PointId::from(chunk_id.to_string())
}

fn access_filter(filter: &SearchFilter) -> Filter {
    let mut must = vec![
        Condition::matches("collection", filter.collections.clone()),
        Condition::matches("visible", true),
    ];
    if let Some(prefix) = &filter.source_prefix {
        must.push(Condition::matches(
            "source_dirs",
            prefix.trim_end_matches('/').to_string(),
        ));
    }
    if !filter.tags.is_empty() {
        must.push(Condition::matches("tags", filter.tags.clone()));
    }
    if let Some(groups) = &filter.groups {
        must.push(Condition::matches("groups", readable_groups(groups)));
    }
    if let Some(language) = filter.language {
        must.push(Condition::matches("language", language.code().to_string()));
    }
    if filter.modified_from.is_some() || filter.modified_until.is_some() {
        must.push(Condition::range(
            "modified",
            Range {
                gte: filter.modified_from.map(|t| t as f64),
                lt: filter.modified_until.map(|t| t as f64),
                ..Range::default()
            },
        ));
    }
    Filter::must(must)
}

fn json_payload(payload: HashMap<String, QdrantValue>) -> serde_json::Map<String, Value> {
    payload
        .into_iter()
        .map(|(k, v)| (k, v.into_json()))
        .collect()
}

fn retrieved_from(point: ScoredPoint, query_vector: &[f32]) -> RetrievedChunk {
    let similarity = point
        .vectors
        .as_ref()
        .and_then(|v| v.get_vector_by_name(DENSE_VECTOR))
        .and_then(|v| match v {
            OutputVector::Dense(dense) => Some(cosine(query_vector, &dense.data)),
            _ => None,
        })
        .unwrap_or(0.0);
    retrieved_chunk(&json_payload(point.payload), point.score, similarity)
}

/// A point's payload for the server.
fn server_payload(chunk: &IndexedChunk) -> VerityResult<Payload> {
    Payload::try_from(payload(chunk)).map_err(|e| VerityError::internal("vector index", e))
}

#[async_trait]
impl VectorIndex for QdrantServerIndex {
    async fn upsert(&self, chunks: &[IndexedChunk]) -> VerityResult<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut points = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if chunk.vector.len() != self.dimension {
                return Err(VerityError::internal(
                    "vector index",
                    "vector of the wrong dimension",
                ));
            }
            let sparse = self.bm25.document(chunk.language, &bm25_text(chunk));
            let vectors: HashMap<String, qdrant_client::qdrant::Vector> = HashMap::from([
                (
                    DENSE_VECTOR.to_string(),
                    qdrant_client::qdrant::Vector::new_dense(chunk.vector.clone()),
                ),
                (
                    SPARSE_VECTOR.to_string(),
                    qdrant_client::qdrant::Vector::new_sparse(sparse.indices, sparse.values),
                ),
            ]);
            points.push(PointStruct::new(
                point_id(&chunk.chunk.id),
                vectors,
                server_payload(chunk)?,
            ));
        }
        self.client
            .upsert_points(
                qdrant_client::qdrant::UpsertPointsBuilder::new(&self.collection, points)
                    .wait(true),
            )
            .await
            .map_err(server_error)?;
        Ok(())
    }

    async fn publish_document(&self, document_id: &str) -> VerityResult<()> {
        let visible = Payload::try_from(json!({"visible": true}))
            .map_err(|e| VerityError::internal("vector index", e))?;
        self.client
            .set_payload(
                SetPayloadPointsBuilder::new(&self.collection, visible)
                    .points_selector(Filter::must([Condition::matches(
                        "document_id",
                        document_id.to_string(),
                    )]))
                    .wait(true),
            )
            .await
            .map_err(server_error)?;
        Ok(())
    }

    async fn list_points(&self, collection: &str) -> VerityResult<Vec<IndexedPoint>> {
        let filter = Filter::must([Condition::matches("collection", collection.to_string())]);
        let mut points = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .filter(filter.clone())
                .limit(SCROLL_PAGE as u32)
                .with_payload(true)
                .with_vectors(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self.client.scroll(request).await.map_err(server_error)?;
            for record in page.result {
                let payload = json_payload(record.payload);
                points.push(indexed_point(&payload));
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(points),
            }
        }
    }

    async fn delete_chunks(&self, chunk_ids: &[String]) -> VerityResult<()> {
        if chunk_ids.is_empty() {
            return Ok(());
        }
        let ids = PointsIdsList {
            ids: chunk_ids.iter().map(|id| point_id(id)).collect(),
        };
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(ids)
                    .wait(true),
            )
            .await
            .map_err(server_error)?;
        Ok(())
    }

    async fn delete_document_chunks(&self, document_id: &str, keep: &[String]) -> VerityResult<()> {
        let mut filter = Filter::must([Condition::matches("document_id", document_id.to_string())]);
        if !keep.is_empty() {
            filter.must_not = vec![Condition::has_id(keep.iter().map(|id| point_id(id)))];
        }
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(server_error)?;
        Ok(())
    }

    async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter,
        limit: usize,
    ) -> VerityResult<Vec<RetrievedChunk>> {
        if query.vector.len() != self.dimension {
            return Err(VerityError::internal(
                "vector index",
                "query vector of the wrong dimension",
            ));
        }
        if filter.collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let filter = access_filter(filter);
        let terms = self.bm25.query(query.language, &query.text);
        let has_terms = !terms.indices.is_empty();
        let dense = || Query::new_nearest(VectorInput::new_dense(query.vector.clone()));
        let sparse = || {
            Query::new_nearest(VectorInput::new_sparse(
                terms.indices.clone(),
                terms.values.clone(),
            ))
        };
        let base = QueryPointsBuilder::new(&self.collection)
            .filter(filter.clone())
            .limit((limit + TIE_MARGIN) as u64)
            .with_payload(true)
            .with_vectors(VectorsSelector {
                names: vec![DENSE_VECTOR.to_string()],
            });
        let request = match (query.mode, has_terms) {
            (RetrievalMode::Dense, _) | (RetrievalMode::Hybrid, false) => {
                base.query(dense()).using(DENSE_VECTOR)
            }
            (RetrievalMode::Sparse, false) => return Ok(Vec::new()),
            (RetrievalMode::Sparse, true) => base.query(sparse()).using(SPARSE_VECTOR),
            (RetrievalMode::Hybrid, true) => {
                let candidates = limit.max(PREFETCH_CANDIDATES) as u64;
                let fusion = match query.fusion {
                    Fusion::Dbsf => Query::new_fusion(qdrant_client::qdrant::Fusion::Dbsf),
                    Fusion::Rrf => Query::new_rrf(RrfBuilder::with_k(RRF_K as u32)),
                };
                base.add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(dense())
                        .using(DENSE_VECTOR)
                        .filter(filter.clone())
                        .limit(candidates),
                )
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(sparse())
                        .using(SPARSE_VECTOR)
                        .filter(filter.clone())
                        .limit(candidates),
                )
                .query(fusion)
            }
        };
        let response = self.client.query(request).await.map_err(server_error)?;
        let passages = response
            .result
            .into_iter()
            .map(|point| retrieved_from(point, &query.vector))
            .collect();
        Ok(in_stable_order(passages, limit))
    }

    async fn count(&self, filter: &SearchFilter) -> VerityResult<usize> {
        if filter.collections.is_empty() {
            return Ok(0);
        }
        let response = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(access_filter(filter))
                    .exact(true),
            )
            .await
            .map_err(server_error)?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }

    async fn check_ready(&self) -> VerityResult<()> {
        self.client.health_check().await.map_err(server_error)?;
        Ok(())
    }

    async fn persist(&self) -> VerityResult<()> {
        // Every write above waited for the server to apply it (and its WAL to hold it).
        Ok(())
    }

    async fn optimize(&self) -> VerityResult<()> {
        // The server optimises in the background.
        Ok(())
    }
}
