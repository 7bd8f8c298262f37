//! BM25 sparse vectors through Qdrant's own BM25 (`qdrant-edge`'s embedder, the same token ids
//! and weights as the server's `qdrant/bm25`), with the tokenisation of each language.

use std::collections::HashMap;

use qdrant_edge::SparseVector;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use verity_core::{Language, VerityError, VerityResult};

/// One BM25 encoder per language: stop words and Snowball stemmer of that language, lowercase,
/// accents folded (so "vacacion" typed without an accent meets "vacación").
pub struct Bm25Encoders {
    by_language: HashMap<Language, EdgeBm25>,
}

impl std::fmt::Debug for Bm25Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Encoders").finish_non_exhaustive()
    }
}

/// The encoder settings for a language; the Qdrant server adapter must use the same.
pub fn bm25_config(language: Language) -> EdgeBm25Config {
    EdgeBm25Config {
        language: Some(
            match language {
                Language::English => "english",
                Language::Spanish => "spanish",
                Language::Portuguese => "portuguese",
            }
            .to_string(),
        ),
        ascii_folding: Some(true),
        ..EdgeBm25Config::default()
    }
}

impl Bm25Encoders {
    pub fn new() -> VerityResult<Self> {
        let mut by_language = HashMap::new();
        for language in Language::ALL {
            let encoder = EdgeBm25::new(bm25_config(language)).map_err(|e| {
                VerityError::internal("vector index", format!("BM25 for {language:?}: {e}"))
            })?;
            by_language.insert(language, encoder);
        }
        Ok(Self { by_language })
    }

    fn encoder(&self, language: Language) -> &EdgeBm25 {
        &self.by_language[&language]
    }

    /// Term-frequency weights of a passage (IDF is applied by the index at query time).
    pub fn document(&self, language: Language, text: &str) -> SparseVector {
        self.encoder(language).embed_document(text)
    }

    /// The question's terms, each with weight 1.
    pub fn query(&self, language: Language, text: &str) -> SparseVector {
        self.encoder(language).embed_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_inflections_and_missing_accents_share_terms() {
        let bm25 = Bm25Encoders::new().unwrap();
        let document = bm25.document(Language::Spanish, "Política de vacaciones para Chile");
        for question in ["¿Cuántos días de vacación tengo?", "dias de vacacion"] {
            let query = bm25.query(Language::Spanish, question);
            let shared = query
                .indices
                .iter()
                .filter(|i| document.indices.contains(i))
                .count();
            assert!(shared >= 1, "{question:?} shares no term with the document");
        }
    }

    #[test]
    fn stop_words_carry_no_weight() {
        let bm25 = Bm25Encoders::new().unwrap();
        assert!(
            bm25.query(Language::English, "the of and")
                .indices
                .is_empty()
        );
        assert!(
            bm25.query(Language::Portuguese, "o que é a")
                .indices
                .is_empty()
        );
    }
}
