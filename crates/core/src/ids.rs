use uuid::Uuid;

/// Namespace for Verity's deterministic ids (a fixed random UUID; never change it, or every
/// stored id changes meaning).
const VERITY_NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_2a4e_9f0d_4c7b_8e3a_61d2_7f40_9c15);

/// The id of a document: stable for a (collection, source) pair, so re-ingesting a file finds
/// the document it produced before.
pub fn document_id(collection: &str, source: &str) -> String {
    Uuid::new_v5(
        &VERITY_NAMESPACE,
        format!("doc\0{collection}\0{source}").as_bytes(),
    )
    .to_string()
}

/// The id of a chunk, which is also its point id in the vector index. It depends on the
/// document, the chunk's position and its content, so retrying a write is idempotent and a
/// changed chunk never reuses the id of the chunk it replaces.
pub fn chunk_id(document_id: &str, ordinal: u32, start: usize, content_hash: &str) -> String {
    Uuid::new_v5(
        &VERITY_NAMESPACE,
        format!("chunk\0{document_id}\0{ordinal}\0{start}\0{content_hash}").as_bytes(),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(document_id("a", "x.md"), document_id("a", "x.md"));
        assert_ne!(document_id("a", "x.md"), document_id("b", "x.md"));
        let d = document_id("a", "x.md");
        assert_eq!(chunk_id(&d, 0, 0, "h"), chunk_id(&d, 0, 0, "h"));
        assert_ne!(chunk_id(&d, 0, 0, "h"), chunk_id(&d, 0, 0, "h2"));
    }
}
