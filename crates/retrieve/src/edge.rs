use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use qdrant_edge::external::serde_json::{Value, json};
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter, HasIdCondition, Match, NamedQuery,
    PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations, PointOperations,
    PointStruct, QueryEnum, QueryRequest, ScoredPoint, ScoringQuery, UpdateOperation,
    VectorInternal, Vectors, WithPayloadInterface, WithVector,
};
use uuid::Uuid;
use verity_core::{
    IndexedChunk, RetrievedChunk, SearchFilter, VectorIndex, VerityError, VerityResult,
};

/// Name of the dense vector of each point (named, so a sparse vector can sit beside it).
pub const DENSE_VECTOR: &str = "dense";

/// Payload fields that filters use; they get keyword indexes.
const INDEXED_FIELDS: &[&str] = &["collection", "document_id"];

/// The chunks of every collection in one Qdrant Edge shard on local disk.
#[derive(Clone)]
pub struct EdgeIndex {
    shard: Arc<EdgeShard>,
    dimension: usize,
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
        let exists = path.join("edge_config.json").exists();
        let shard = if exists {
            EdgeShard::load(path, None).map_err(|e| {
                VerityError::unavailable(
                    "vector index",
                    format!("cannot open Qdrant Edge shard {}: {e}", path.display()),
                )
            })?
        } else {
            std::fs::create_dir_all(path).map_err(|e| {
                VerityError::Config(format!("cannot create {}: {e}", path.display()))
            })?;
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
                ..EdgeConfig::default()
            };
            let shard = EdgeShard::new(path, config).map_err(index_error)?;
            for field in INDEXED_FIELDS {
                shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: json_path(field)?,
                            field_schema: Some(PayloadFieldSchema::FieldType(
                                PayloadSchemaType::Keyword,
                            )),
                        }),
                    ))
                    .map_err(index_error)?;
            }
            shard
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
            dimension,
        })
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

fn access_filter(filter: &SearchFilter) -> VerityResult<Filter> {
    Ok(Filter::new_must(keyword(
        "collection",
        filter.collections.clone(),
    )?))
}

fn payload_of(chunk: &IndexedChunk) -> Value {
    json!({
        "collection": chunk.collection,
        "document_id": chunk.chunk.document_id,
        "chunk_id": chunk.chunk.id,
        "title": chunk.title,
        "source": chunk.source,
        "start": chunk.chunk.start,
        "end": chunk.chunk.end,
        "text": chunk.chunk.text,
        "heading_path": chunk.chunk.heading_path,
    })
}

fn retrieved_from(point: ScoredPoint) -> VerityResult<RetrievedChunk> {
    let payload = point
        .payload
        .ok_or_else(|| VerityError::internal("vector index", "point without payload"))?
        .0;
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let number = |key: &str| payload.get(key).and_then(Value::as_u64).unwrap_or_default() as usize;
    Ok(RetrievedChunk {
        chunk_id: text("chunk_id"),
        document_id: text("document_id"),
        collection: text("collection"),
        title: text("title"),
        source: text("source"),
        start: number("start"),
        end: number("end"),
        text: text("text"),
        heading_path: payload
            .get("heading_path")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        score: point.score,
    })
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
            let vectors = Vectors::from(vec![(DENSE_VECTOR, chunk.vector.clone())]);
            points.push(
                PointStruct::new(point_id(&chunk.chunk.id)?, vectors, payload_of(chunk)).into(),
            );
        }
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
            .map_err(index_error)
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
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(filter),
            ))
            .map_err(index_error)
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> VerityResult<Vec<RetrievedChunk>> {
        self.check_dimension(vector)?;
        if filter.collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let request = QueryRequest {
            prefetches: vec![],
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Dense(vector.to_vec()),
                using: Some(DENSE_VECTOR.to_string()),
            }))),
            filter: Some(access_filter(filter)?),
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        self.shard
            .query(request)
            .map_err(index_error)?
            .into_iter()
            .map(retrieved_from)
            .collect()
    }

    async fn count(&self, filter: &SearchFilter) -> VerityResult<usize> {
        if filter.collections.is_empty() {
            return Ok(0);
        }
        self.shard
            .count(CountRequest {
                filter: Some(access_filter(filter)?),
                exact: true,
            })
            .map_err(index_error)
    }

    async fn optimize(&self) -> VerityResult<()> {
        self.shard.optimize().map_err(index_error)?;
        self.shard.flush();
        Ok(())
    }
}
