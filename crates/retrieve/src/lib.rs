//! The vector index. The embedded default keeps every collection's chunks in one Qdrant Edge
//! shard inside the data directory. Each chunk has a dense vector (meaning) and a BM25 sparse
//! vector (words); a hybrid query runs both as prefetches and fuses them with reciprocal rank
//! fusion, in one Qdrant query. Collections and metadata are payload filters applied inside
//! every prefetch.
//!
//! Key decision: the payload carries everything a citation needs (text, span, title, source),
//! so answering a question takes one vector query and no database round trip. The metadata
//! store stays the source of truth; the index can be rebuilt from it.

mod bm25;
mod edge;
mod points;
mod server;

pub use bm25::{Bm25Encoders, bm25_config};
pub use edge::{DENSE_VECTOR, EdgeIndex, INDEX_FORMAT, RRF_K, SPARSE_VECTOR};
pub use server::QdrantServerIndex;
