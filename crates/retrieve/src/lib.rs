//! The vector index. The embedded default keeps every collection's chunks in one Qdrant Edge
//! shard inside the data directory; collections (and, later, access groups) are payload filters
//! applied inside the vector query.
//!
//! Key decision: the payload carries everything a citation needs (text, span, title, source),
//! so answering a question takes one vector query and no database round trip. The metadata
//! store stays the source of truth; the index can be rebuilt from it.

mod edge;

pub use edge::{DENSE_VECTOR, EdgeIndex};
