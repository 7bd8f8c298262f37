//! What a point of the index holds, the same on Edge and on a server: its payload, the text its
//! BM25 vector is made from, and how a found point becomes a [`RetrievedChunk`].

use serde_json::{Map, Value, json};
use verity_core::{IndexedChunk, IndexedPoint, PUBLIC_GROUP, RetrievedChunk, source_directories};

/// How a filtered payload field is indexed; each backend maps this to its own schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Keyword,
    Integer,
    Bool,
}

/// Payload fields that filters use, with how they are indexed.
pub(crate) const FILTERED_FIELDS: &[(&str, FieldKind)] = &[
    ("collection", FieldKind::Keyword),
    ("document_id", FieldKind::Keyword),
    ("language", FieldKind::Keyword),
    ("tags", FieldKind::Keyword),
    ("groups", FieldKind::Keyword),
    ("source_dirs", FieldKind::Keyword),
    ("modified", FieldKind::Integer),
    ("visible", FieldKind::Bool),
];

/// Candidates each prefetch (dense, sparse) contributes to a hybrid fusion, at least.
pub(crate) const PREFETCH_CANDIDATES: usize = 50;
/// Points are read in pages of this size when listed for reconciliation.
pub(crate) const SCROLL_PAGE: usize = 1_000;

/// Passages asked of the index beyond the caller's limit, so that passages tied on score at the
/// limit (reciprocal rank fusion gives equal scores to a passage ranked 3rd dense and 4th sparse
/// and one ranked 4th dense and 3rd sparse) are all seen before [`in_stable_order`] picks.
pub(crate) const TIE_MARGIN: usize = 8;

/// `passages` best first, ties broken by the dense similarity and then the chunk id, cut to
/// `limit`. Qdrant returns tied points in no fixed order; without this the same question could
/// get its sources numbered differently from one call to the next, and with them its citations.
pub(crate) fn in_stable_order(
    mut passages: Vec<RetrievedChunk>,
    limit: usize,
) -> Vec<RetrievedChunk> {
    passages.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.similarity.total_cmp(&a.similarity))
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    passages.truncate(limit);
    passages
}

/// The payload of a chunk's point: everything a citation needs, the filter fields, and
/// `visible: false` (published later, per document).
pub(crate) fn payload(chunk: &IndexedChunk) -> Value {
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
        "page": chunk.chunk.page,
        "language": chunk.language.code(),
        "tags": chunk.tags,
        "groups": index_groups(&chunk.groups),
        "source_dirs": source_directories(&chunk.source),
        "modified": chunk.modified,
        "visible": false,
    })
}

/// The groups a point carries: the document's, or [`PUBLIC_GROUP`] when it has none, so that
/// "readable by one of the caller's groups or by everyone" is one match-any condition.
pub(crate) fn index_groups(groups: &[String]) -> Vec<String> {
    if groups.is_empty() {
        vec![PUBLIC_GROUP.to_string()]
    } else {
        groups.to_vec()
    }
}

/// The values a caller's search matches in `groups`: its groups and [`PUBLIC_GROUP`].
pub(crate) fn readable_groups(caller_groups: &[String]) -> Vec<String> {
    caller_groups
        .iter()
        .cloned()
        .chain(std::iter::once(PUBLIC_GROUP.to_string()))
        .collect()
}

/// What BM25 reads of a chunk: its title and headings (words questions often use) and its text.
pub(crate) fn bm25_text(chunk: &IndexedChunk) -> String {
    format!(
        "{}\n{}\n{}",
        chunk.title,
        chunk.chunk.heading_path.join("\n"),
        chunk.chunk.text
    )
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

/// A point as reconciliation sees it, from its payload.
pub(crate) fn indexed_point(payload: &Map<String, Value>) -> IndexedPoint {
    IndexedPoint {
        chunk_id: text_field(payload, "chunk_id"),
        document_id: text_field(payload, "document_id"),
        visible: payload
            .get("visible")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

pub(crate) fn text_field(payload: &Map<String, Value>, key: &str) -> String {
    payload
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A found point as a retrieved chunk: its payload, its score in the search's mode, and the
/// question's cosine similarity to its dense vector.
pub(crate) fn retrieved_chunk(
    payload: &Map<String, Value>,
    score: f32,
    similarity: f32,
) -> RetrievedChunk {
    let number = |key: &str| payload.get(key).and_then(Value::as_u64).unwrap_or_default() as usize;
    RetrievedChunk {
        chunk_id: text_field(payload, "chunk_id"),
        document_id: text_field(payload, "document_id"),
        collection: text_field(payload, "collection"),
        title: text_field(payload, "title"),
        source: text_field(payload, "source"),
        start: number("start"),
        end: number("end"),
        text: text_field(payload, "text"),
        heading_path: payload
            .get("heading_path")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        page: payload
            .get("page")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        score,
        similarity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: &str, score: f32, similarity: f32) -> RetrievedChunk {
        let mut payload = Map::new();
        payload.insert("chunk_id".into(), json!(id));
        retrieved_chunk(&payload, score, similarity)
    }

    #[test]
    fn tied_passages_come_in_one_order_whatever_order_the_index_gave() {
        let ids = |passages: Vec<RetrievedChunk>| -> Vec<String> {
            passages.into_iter().map(|p| p.chunk_id).collect()
        };
        let given = vec![
            passage("c", 0.5, 0.7),
            passage("b", 0.5, 0.7),
            passage("a", 0.5, 0.8),
            passage("d", 0.9, 0.1),
        ];
        let mut reversed = given.clone();
        reversed.reverse();
        assert_eq!(ids(in_stable_order(given, 3)), ["d", "a", "b"]);
        assert_eq!(ids(in_stable_order(reversed, 3)), ["d", "a", "b"]);
    }
}
