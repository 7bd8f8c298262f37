use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::external::serde_json::{self as serde_json, Value};
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter, Fusion, HasIdCondition, Match,
    Modifier, NamedQuery, Payload, PayloadFieldSchema, PayloadOps, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, Prefetch, QueryEnum, QueryRequest, Range,
    ScoredPoint, ScoringQuery, ScrollRequest, SetPayloadOp, UpdateOperation, Vector,
    VectorInternal, VectorStructInternal, Vectors, WithPayloadInterface, WithVector,
};
use uuid::Uuid;
use verity_core::{
    IndexedChunk, IndexedPoint, RetrievalMode, RetrievedChunk, SearchFilter, SearchQuery,
    VectorIndex, VerityError, VerityResult,
};

use crate::bm25::Bm25Encoders;
use crate::points::{
    FILTERED_FIELDS, FieldKind, PREFETCH_CANDIDATES, SCROLL_PAGE, TIE_MARGIN, bm25_text, cosine,
    in_stable_order, indexed_point, payload, readable_groups, retrieved_chunk,
};

/// Name of the dense vector of each point.
pub const DENSE_VECTOR: &str = "dense";
/// Name of the BM25 sparse vector of each point (IDF applied by Qdrant at query time).
pub const SPARSE_VECTOR: &str = "bm25";
/// The constant of reciprocal rank fusion: a passage at rank r of a list scores 1 / (k + r).
/// 60 is the value of the original RRF paper and of the reference figures; a small k lets the
/// first ranks of either list dominate.
pub const RRF_K: usize = 60;
/// Identifies how points are laid out; part of the ingest fingerprint, so documents are
/// re-indexed when it changes.
pub const INDEX_FORMAT: &str = "edge-dense-bm25-groups-pages-v4";
fn schema_of(kind: FieldKind) -> PayloadSchemaType {
    match kind {
        FieldKind::Keyword => PayloadSchemaType::Keyword,
        FieldKind::Integer => PayloadSchemaType::Integer,
        FieldKind::Bool => PayloadSchemaType::Bool,
    }
}

/// The chunks of every collection in one Qdrant Edge shard on local disk.
#[derive(Clone)]
pub struct EdgeIndex {
    shard: Arc<EdgeShard>,
    /// Held by every write and flush. `EdgeShard::flush` takes its WAL lock with `try_lock`
    /// and panics if a write holds it, so writes from concurrent requests (uploads, deletes)
    /// must not overlap with a flush, nor with each other.
    writes: Arc<std::sync::Mutex<()>>,
    dimension: usize,
    bm25: Arc<Bm25Encoders>,
}

impl std::fmt::Debug for EdgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeIndex")
            .field("path", &self.shard.path())
            .field("dimension", &self.dimension)
            .finish()
    }
}

fn index_error(err: impl std::fmt::Display) -> VerityError {
    VerityError::internal("vector index", err)
}

impl EdgeIndex {
    /// Opens the shard at `path`, creating it for vectors of `dimension` if it does not exist.
    /// An existing shard built for another dimension is an error: its vectors came from
    /// another model and must be rebuilt.
    pub fn open(path: &Path, dimension: usize) -> VerityResult<Self> {
        let mut shard = if path.join("edge_config.json").exists() {
            Some(EdgeShard::load(path, None).map_err(|e| {
                VerityError::unavailable(
                    "vector index",
                    format!("cannot open Qdrant Edge shard {}: {e}", path.display()),
                )
            })?)
        } else {
            None
        };
        if shard
            .as_ref()
            .is_some_and(|s| !s.config().sparse_vectors.contains_key(SPARSE_VECTOR))
        {
            // A shard from before BM25 was indexed. The index is derived data: start a new one;
            // the next `verity ingest` refills it (the ingest fingerprint changed with it).
            tracing::warn!(path = %path.display(), "the vector index has an older layout; recreating it empty: run `verity ingest` again to refill it");
            drop(shard.take());
            std::fs::remove_dir_all(path).map_err(|e| {
                VerityError::Config(format!("cannot remove old index {}: {e}", path.display()))
            })?;
        }
        let shard = match shard {
            // A shard from before a filtered field existed gets its index now.
            Some(shard) => {
                create_field_indexes(&shard)?;
                shard
            }
            None => create_shard(path, dimension)?,
        };
        let built_for = shard
            .config()
            .vectors
            .get(DENSE_VECTOR)
            .map(|params| params.size);
        if built_for != Some(dimension) {
            return Err(VerityError::Config(format!(
                "the vector index at {} holds vectors of dimension {built_for:?} but the \
                 embedding model gives {dimension}; delete that directory and re-ingest",
                path.display()
            )));
        }
        Ok(Self {
            shard: Arc::new(shard),
            writes: Arc::new(std::sync::Mutex::new(())),
            dimension,
            bm25: Arc::new(Bm25Encoders::new()?),
        })
    }

    /// See [`EdgeIndex::writes`]. A panic while writing leaves nothing of ours half-done
    /// behind the lock (the shard keeps its own state), so a poisoned lock is taken over.
    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` on tokio's blocking pool: the shard's calls are synchronous (disk, HNSW,
    /// the write lock), and on an async worker they would hold up every other request.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&EdgeIndex) -> VerityResult<T> + Send + 'static,
    ) -> VerityResult<T> {
        let index = self.clone();
        tokio::task::spawn_blocking(move || work(&index))
            .await
            .map_err(index_error)?
    }

    /// Applies one update under the write lock, on the blocking pool.
    async fn write(&self, operation: UpdateOperation) -> VerityResult<()> {
        self.blocking(move |index| {
            let _writing = index.write_lock();
            index.shard.update(operation).map_err(index_error)
        })
        .await
    }

    fn check_dimension(&self, vector: &[f32]) -> VerityResult<()> {
        if vector.len() == self.dimension {
            Ok(())
        } else {
            Err(VerityError::internal(
                "vector index",
                format!(
                    "vector of dimension {} given to an index of dimension {}",
                    vector.len(),
                    self.dimension
                ),
            ))
        }
    }
}

fn create_shard(path: &Path, dimension: usize) -> VerityResult<EdgeShard> {
    std::fs::create_dir_all(path)
        .map_err(|e| VerityError::Config(format!("cannot create {}: {e}", path.display())))?;
    let config = EdgeConfig {
        vectors: HashMap::from([(
            DENSE_VECTOR.to_string(),
            EdgeVectorParams {
                size: dimension,
                distance: Distance::Cosine,
                on_disk: None,
                multivector_config: None,
                datatype: None,
                quantization_config: None,
                hnsw_config: None,
            },
        )]),
        sparse_vectors: HashMap::from([(
            SPARSE_VECTOR.to_string(),
            EdgeSparseVectorParams {
                full_scan_threshold: None,
                on_disk: None,
                modifier: Some(Modifier::Idf),
                datatype: None,
            },
        )]),
        ..EdgeConfig::default()
    };
    let shard = EdgeShard::new(path, config).map_err(index_error)?;
    create_field_indexes(&shard)?;
    Ok(shard)
}

/// Indexes every filtered payload field (creating an index that exists is a no-op).
fn create_field_indexes(shard: &EdgeShard) -> VerityResult<()> {
    for (field, kind) in FILTERED_FIELDS {
        shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: json_path(field)?,
                    field_schema: Some(PayloadFieldSchema::FieldType(schema_of(*kind))),
                }),
            ))
            .map_err(index_error)?;
    }
    Ok(())
}

fn json_path(field: &str) -> VerityResult<qdrant_edge::JsonPath> {
    field.try_into().map_err(|_| {
        VerityError::internal("vector index", format!("invalid payload field {field:?}"))
    })
}

fn keyword(field: &str, value: impl Into<Match>) -> VerityResult<Condition> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        value.into(),
    )))
}

fn point_id(chunk_id: &str) -> VerityResult<PointId> {
    Uuid::parse_str(chunk_id).map(PointId::Uuid).map_err(|e| {
        VerityError::internal(
            "vector index",
            format!("chunk id {chunk_id:?} is not a UUID: {e}"),
        )
    })
}

/// Every condition of the filter; applied inside each prefetch and to the final query. Only
/// published (visible) chunks are ever found.
fn access_filter(filter: &SearchFilter) -> VerityResult<Filter> {
    let mut must = vec![
        keyword("collection", filter.collections.clone())?,
        keyword("visible", true)?,
    ];
    if let Some(prefix) = &filter.source_prefix {
        must.push(keyword(
            "source_dirs",
            prefix.trim_end_matches('/').to_string(),
        )?);
    }
    if !filter.tags.is_empty() {
        must.push(keyword("tags", filter.tags.clone())?);
    }
    if let Some(groups) = &filter.groups {
        must.push(keyword("groups", readable_groups(groups))?);
    }
    if let Some(language) = filter.language {
        must.push(keyword("language", language.code().to_string())?);
    }
    if filter.modified_from.is_some() || filter.modified_until.is_some() {
        must.push(Condition::Field(FieldCondition::new_range(
            json_path("modified")?,
            Range {
                gte: filter.modified_from.map(|t| OrderedFloat(t as f64)),
                lt: filter.modified_until.map(|t| OrderedFloat(t as f64)),
                gt: None,
                lte: None,
            },
        )));
    }
    Ok(Filter {
        should: None,
        min_should: None,
        must: Some(must),
        must_not: None,
    })
}

fn dense_vector_of(point: &ScoredPoint) -> Option<&[f32]> {
    match point.vector.as_ref()? {
        VectorStructInternal::Named(vectors) => match vectors.get(DENSE_VECTOR)? {
            VectorInternal::Dense(v) => Some(v.as_slice()),
            _ => None,
        },
        VectorStructInternal::Single(v) => Some(v.as_slice()),
        VectorStructInternal::MultiDense(_) => None,
    }
}

fn retrieved_from(point: ScoredPoint, query_vector: &[f32]) -> VerityResult<RetrievedChunk> {
    let similarity = dense_vector_of(&point).map_or(0.0, |v| cosine(query_vector, v));
    let payload = point
        .payload
        .ok_or_else(|| VerityError::internal("vector index", "point without payload"))?
        .0;
    Ok(retrieved_chunk(&payload, point.score, similarity))
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    async fn upsert(&self, chunks: &[IndexedChunk]) -> VerityResult<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut points = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            self.check_dimension(&chunk.vector)?;
            let sparse = self.bm25.document(chunk.language, &bm25_text(chunk));
            let vectors = Vectors::from(vec![
                (DENSE_VECTOR, Vector::new_dense(chunk.vector.clone())),
                (SPARSE_VECTOR, Vector(VectorInternal::Sparse(sparse))),
            ]);
            points
                .push(PointStruct::new(point_id(&chunk.chunk.id)?, vectors, payload(chunk)).into());
        }
        self.write(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
        ))
        .await
    }

    async fn publish_document(&self, document_id: &str) -> VerityResult<()> {
        let mut visible = serde_json::Map::new();
        visible.insert("visible".into(), Value::Bool(true));
        self.write(UpdateOperation::PayloadOperation(PayloadOps::SetPayload(
            SetPayloadOp {
                payload: Payload(visible),
                points: None,
                filter: Some(Filter::new_must(keyword(
                    "document_id",
                    document_id.to_string(),
                )?)),
                key: None,
            },
        )))
        .await
    }

    async fn list_points(&self, collection: &str) -> VerityResult<Vec<IndexedPoint>> {
        let filter = Filter::new_must(keyword("collection", collection.to_string())?);
        self.blocking(move |index| {
            let mut points = Vec::new();
            let mut offset = None;
            loop {
                let (page, next) = index
                    .shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(SCROLL_PAGE),
                        filter: Some(filter.clone()),
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        with_vector: WithVector::Bool(false),
                        order_by: None,
                    })
                    .map_err(index_error)?;
                for record in page {
                    let payload = record.payload.map(|p| p.0).unwrap_or_default();
                    points.push(indexed_point(&payload));
                }
                match next {
                    Some(next) => offset = Some(next),
                    None => return Ok(points),
                }
            }
        })
        .await
    }

    async fn delete_chunks(&self, chunk_ids: &[String]) -> VerityResult<()> {
        if chunk_ids.is_empty() {
            return Ok(());
        }
        let ids = chunk_ids
            .iter()
            .map(|id| point_id(id))
            .collect::<VerityResult<Vec<_>>>()?;
        self.write(UpdateOperation::PointOperation(
            PointOperations::DeletePoints { ids },
        ))
        .await
    }

    async fn delete_document_chunks(&self, document_id: &str, keep: &[String]) -> VerityResult<()> {
        let mut filter = Filter::new_must(keyword("document_id", document_id.to_string())?);
        if !keep.is_empty() {
            let keep: HasIdCondition = keep
                .iter()
                .map(|id| point_id(id))
                .collect::<VerityResult<_>>()?;
            filter.must_not = Some(vec![Condition::HasId(keep)]);
        }
        self.write(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(filter),
        ))
        .await
    }

    async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter,
        limit: usize,
    ) -> VerityResult<Vec<RetrievedChunk>> {
        self.check_dimension(&query.vector)?;
        if filter.collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let filter = access_filter(filter)?;
        let dense = ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::Dense(query.vector.clone()),
            using: Some(DENSE_VECTOR.to_string()),
        }));
        let terms = self.bm25.query(query.language, &query.text);
        let sparse = (!terms.indices.is_empty()).then(|| {
            ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Sparse(terms),
                using: Some(SPARSE_VECTOR.to_string()),
            }))
        });
        let (prefetches, scoring) = match (query.mode, sparse) {
            (RetrievalMode::Dense, _) | (RetrievalMode::Hybrid, None) => (vec![], dense),
            // A question made only of stop words has no term to match.
            (RetrievalMode::Sparse, None) => return Ok(Vec::new()),
            (RetrievalMode::Sparse, Some(sparse)) => (vec![], sparse),
            (RetrievalMode::Hybrid, Some(sparse)) => {
                let prefetch = |query: ScoringQuery| Prefetch {
                    prefetches: vec![],
                    query: Some(query),
                    limit: limit.max(PREFETCH_CANDIDATES),
                    params: None,
                    filter: Some(filter.clone()),
                    score_threshold: None,
                };
                let fusion = match query.fusion {
                    verity_core::Fusion::Dbsf => Fusion::Dbsf,
                    verity_core::Fusion::Rrf => Fusion::Rrf {
                        k: RRF_K,
                        weights: None,
                    },
                };
                (
                    vec![prefetch(dense), prefetch(sparse)],
                    ScoringQuery::Fusion(fusion),
                )
            }
        };
        let request = QueryRequest {
            prefetches,
            query: Some(scoring),
            filter: Some(filter),
            score_threshold: None,
            limit: limit + TIE_MARGIN,
            offset: 0,
            params: None,
            // Dense vectors come back so that the question's cosine similarity to each passage
            // is known in every mode: the abstention gate needs it.
            with_vector: WithVector::Selector(vec![DENSE_VECTOR.to_string()]),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let vector = query.vector.clone();
        self.blocking(move |index| {
            let passages = index
                .shard
                .query(request)
                .map_err(index_error)?
                .into_iter()
                .map(|point| retrieved_from(point, &vector))
                .collect::<VerityResult<Vec<_>>>()?;
            Ok(in_stable_order(passages, limit))
        })
        .await
    }

    async fn count(&self, filter: &SearchFilter) -> VerityResult<usize> {
        if filter.collections.is_empty() {
            return Ok(0);
        }
        let filter = access_filter(filter)?;
        self.blocking(move |index| {
            index
                .shard
                .count(CountRequest {
                    filter: Some(filter),
                    exact: true,
                })
                .map_err(index_error)
        })
        .await
    }

    async fn persist(&self) -> VerityResult<()> {
        self.blocking(|index| {
            let _writing = index.write_lock();
            index.shard.flush();
            Ok(())
        })
        .await
    }

    async fn optimize(&self) -> VerityResult<()> {
        self.blocking(|index| {
            let _writing = index.write_lock();
            index.shard.optimize().map_err(index_error)?;
            index.shard.flush();
            Ok(())
        })
        .await
    }
}
