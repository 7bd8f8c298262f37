//! Content terms of a text, for matching question words against passage sentences: lowercase,
//! accents folded, function words dropped, and a light suffix stemming so that "vacaciones",
//! "vacación" and "vacation" meet.

use std::collections::HashSet;

use verity_core::{Language, RetrievedChunk, detect_language, recognised_language};

pub(crate) const STOP_WORDS: &[&str] = &[
    // English
    "a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "for", "from", "by", "with", "is",
    "are", "was", "were", "be", "been", "being", "do", "does", "did", "have", "has", "had", "what",
    "which", "who", "whom", "whose", "when", "where", "why", "how", "that", "this", "these",
    "those", "it", "its", "as", "can", "could", "should", "would", "will", "may", "i", "my", "me",
    "we", "our", "you", "your", "they", "their", "he", "she", "his", "her", "there", "if", "than",
    "then", "into", "about", "many", "much", "any", "some", "not", "no", "get", "must", "need",
    "needs", "there", "long", // Spanish
    "el", "la", "los", "las", "lo", "un", "una", "unos", "unas", "de", "del", "y", "o", "en",
    "por", "para", "con", "sin", "que", "es", "son", "se", "su", "sus", "al", "como", "cual",
    "cuales", "cuanto", "cuantos", "cuanta", "cuantas", "cuando", "donde", "quien", "quienes",
    "mi", "mis", "tengo", "hay", "puedo", "debo", "le", "les", "me", "nos", "este", "esta",
    "tiene", "tienen", "puede", "pueden", "debe", "deben", "ser", "hace", "cada",
    "muy", // Portuguese
    "o", "os", "as", "um", "uma", "do", "da", "dos", "das", "no", "na", "nos", "nas", "e", "em",
    "ao", "aos", "meu", "minha", "quantos", "quantas", "quanto", "quando", "onde", "quem", "qual",
    "quais", "posso", "devo", "eu", "seu", "sua", "ha", "nao",
];

/// Folds the accents of Latin letters (á → a, ç → c, ñ → n).
pub fn fold(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        other => other,
    }
}

/// A crude stem: the first six letters of a folded word. Good enough to match inflections
/// ("vacaciones"/"vacacion", "reimbursed"/"reimbursement") for sentence picking; retrieval
/// itself uses the dense model.
fn stem(word: &str) -> String {
    word.chars().take(6).collect()
}

/// The share of `question`'s content terms that appear in at least one of `passages` written
/// in the question's language; 1.0 for a question without content terms, or when the closest
/// passage (by cosine similarity) is in another language: words do not carry across
/// languages, so a Spanish question answered by an English passage is judged by the
/// similarity gate alone. A question that shows no language (names and codes) is compared
/// with every passage.
pub fn term_coverage(question: &str, passages: &[RetrievedChunk]) -> f32 {
    let language = recognised_language(question);
    if closest_in_other_language(language, passages) {
        return 1.0;
    }
    coverage_in_language(question, language, passages)
}

/// Whether the passage closest to a question in `language` (by cosine similarity) is written
/// in another language. False for a question that shows no language, and for no passages.
pub fn closest_in_other_language(language: Option<Language>, passages: &[RetrievedChunk]) -> bool {
    let closest = passages
        .iter()
        .max_by(|a, b| a.similarity.total_cmp(&b.similarity));
    match (language, closest) {
        (Some(language), Some(closest)) => detect_language(&closest.text) != language,
        _ => false,
    }
}

/// The share of `question`'s content terms found in the passages written in `language` (every
/// passage when the question shows none); 1.0 for a question without content terms.
pub(crate) fn coverage_in_language(
    question: &str,
    language: Option<Language>,
    passages: &[RetrievedChunk],
) -> f32 {
    let wanted = content_terms(question);
    if wanted.is_empty() {
        return 1.0;
    }
    let mut found: HashSet<String> = HashSet::new();
    for passage in passages
        .iter()
        .filter(|p| language.is_none_or(|l| detect_language(&p.text) == l))
    {
        found.extend(content_terms(&passage.text));
        found.extend(content_terms(&passage.title));
    }
    wanted.intersection(&found).count() as f32 / wanted.len() as f32
}

/// The set of stemmed content terms of `text`.
pub fn content_terms(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .map(fold)
                .collect::<String>()
        })
        .filter(|w| {
            !STOP_WORDS.contains(&w.as_str())
                && (w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|w| stem(&w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections_and_accents_meet() {
        let a = content_terms("¿Cuántas vacaciones tengo?");
        let b = content_terms("La vacación se pide en Kallpa");
        assert!(a.intersection(&b).next().is_some(), "{a:?} / {b:?}");
        assert!(!a.contains("tengo"));
    }

    fn passage(text: &str, similarity: f32) -> RetrievedChunk {
        RetrievedChunk {
            chunk_id: "c".into(),
            document_id: "d".into(),
            collection: "kb".into(),
            title: String::new(),
            source: "/kb/d.md".into(),
            start: 0,
            end: text.len(),
            text: text.into(),
            heading_path: Vec::new(),
            page: None,
            score: 1.0,
            similarity,
        }
    }

    #[test]
    fn words_are_compared_only_with_passages_in_the_questions_language() {
        let english = passage(
            "The Normans were the people who gave their name to Normandy.",
            0.9,
        );
        let spanish = passage(
            "Los normandos fueron el pueblo que dio su nombre a Normandía.",
            0.85,
        );
        let unrelated = passage(
            "La política de vacaciones de la empresa se revisa cada año.",
            0.85,
        );
        let question = "¿Qué pueblo dio su nombre a Normandía?";
        // The closest passage is English: no word of one language is a word of the other,
        // which says nothing about whether it answers the question.
        assert_eq!(term_coverage(question, std::slice::from_ref(&english)), 1.0);
        assert_eq!(
            term_coverage(question, &[english.clone(), unrelated.clone()]),
            1.0
        );
        // The closest passage is Spanish: Spanish passages are what the words are looked for in.
        let closer_unrelated = passage(&unrelated.text, 0.95);
        assert!(term_coverage(question, &[english.clone(), closer_unrelated]) < 0.5);
        let closer_spanish = passage(&spanish.text, 0.95);
        assert!(term_coverage(question, &[english, closer_spanish]) > 0.6);
    }
}
