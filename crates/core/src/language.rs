use serde::{Deserialize, Serialize};

/// The languages Verity knows: their BM25 tokenisation (stop words, stemming) and Verity's own
/// messages. Written as ISO 639-1 codes on the wire and in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Language {
    #[serde(rename = "en")]
    English,
    #[serde(rename = "es")]
    Spanish,
    #[serde(rename = "pt")]
    Portuguese,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::English, Language::Spanish, Language::Portuguese];

    /// The ISO 639-1 code: `en`, `es`, `pt`.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Spanish => "es",
            Language::Portuguese => "pt",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }
}

// The most frequent function words of each language (articles, prepositions, pronouns,
// auxiliaries, question words). A word two languages share counts for both; "a" counts for
// all three (an English article, a Portuguese article, a Spanish preposition).
const SPANISH: &[&str] = &[
    "el", "la", "los", "las", "que", "de", "del", "y", "en", "un", "una", "es", "por", "para",
    "cuántos", "cuántas", "cuánto", "cuándo", "cómo", "qué", "dónde", "quién", "puedo", "mi", "se",
    "con", "al", "hay", "son", "cuál", "cuáles", "a", "fue", "fueron", "su", "sus", "lo", "le",
    "les", "está", "están", "también", "entre", "sobre", "más", "porque", "este", "esta", "ese",
    "esa", "él", "ella", "ellos", "muy", "ha", "han", "había",
];
const PORTUGUESE: &[&str] = &[
    "o", "os", "as", "que", "de", "do", "da", "dos", "das", "e", "em", "no", "na", "um", "uma",
    "é", "por", "para", "quantos", "quantas", "quanto", "quando", "como", "onde", "quem", "posso",
    "meu", "minha", "com", "ao", "há", "são", "qual", "quais", "não", "férias", "a", "foi",
    "foram", "se", "pelo", "pela", "pelos", "pelas", "nos", "nas", "sua", "seu", "seus", "suas",
    "ser", "está", "estão", "também", "entre", "sobre", "mais", "porque", "quê", "este", "esta",
    "esse", "essa", "ele", "ela", "eles", "isso",
];
const ENGLISH: &[&str] = &[
    "the", "a", "an", "as", "of", "and", "or", "in", "is", "are", "was", "were", "be", "been",
    "has", "have", "had", "it", "its", "to", "for", "how", "what", "when", "where", "who", "which",
    "why", "do", "does", "did", "can", "my", "i", "many", "much", "with", "on", "at", "by", "from",
    "that", "this", "not",
];

/// A cheap guess at the language of a text (a question or a whole document), by counting
/// function words. English wins ties: it is the fallback when nothing is recognised.
pub fn detect_language(text: &str) -> Language {
    recognised_language(text).unwrap_or(Language::English)
}

/// The language a text shows by its function words or its letters; `None` when it shows none
/// (a few names or codes, "Kubernetes API timeout"), where [`detect_language`] falls back to
/// English.
pub fn recognised_language(text: &str) -> Option<Language> {
    let lowercase = text.to_lowercase();
    let words: Vec<&str> = lowercase
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let score = |list: &[&str]| words.iter().filter(|w| list.contains(w)).count();
    let (en, es, pt) = (score(ENGLISH), score(SPANISH), score(PORTUGUESE));
    let spanish_marks = ['¿', '¡', 'ñ'].iter().any(|m| lowercase.contains(*m));
    let portuguese_marks = ['ç', 'ã', 'õ', 'ê', 'ô', 'à']
        .iter()
        .any(|m| lowercase.contains(*m));
    if en + es + pt == 0 && !spanish_marks && !portuguese_marks {
        return None;
    }
    Some(
        if (es > en && es >= pt && !portuguese_marks) || (spanish_marks && es >= en) {
            Language::Spanish
        } else if pt > en || (portuguese_marks && pt >= en) {
            Language::Portuguese
        } else {
            Language::English
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_recognised_in_the_three_languages() {
        assert_eq!(
            detect_language("How many vacation days do I get?"),
            Language::English
        );
        assert_eq!(
            detect_language("¿Cuántos días de vacaciones tengo?"),
            Language::Spanish
        );
        assert_eq!(
            detect_language("Quantos dias de férias eu tenho?"),
            Language::Portuguese
        );
        assert_eq!(
            detect_language("Como funciona o vale-refeição?"),
            Language::Portuguese
        );
        assert_eq!(
            detect_language("¿Cómo se pide la vacación?"),
            Language::Spanish
        );
    }

    #[test]
    fn short_questions_are_told_apart_by_their_function_words() {
        // Each was taken for another language before: English's "a" and "as" are Portuguese
        // words too, and Portuguese questions without a marked letter looked Spanish.
        for (text, language) in [
            (
                "When did Herve serve as a Byzantine general?",
                Language::English,
            ),
            (
                "Quando foi publicada a álgebra booleana?",
                Language::Portuguese,
            ),
            (
                "Quais oportunidades a graduação proporciona?",
                Language::Portuguese,
            ),
            ("À que Turing contribuiu?", Language::Portuguese),
            ("Quem também utiliza a sigla WebE?", Language::Portuguese),
            (
                "¿Cuántos meses le tomó a Pierre Bayle escribir su Historical and Critical Dictionary?",
                Language::Spanish,
            ),
        ] {
            assert_eq!(detect_language(text), language, "{text}");
        }
    }

    #[test]
    fn a_text_without_function_words_shows_no_language() {
        assert_eq!(recognised_language("Kubernetes API timeout"), None);
        assert_eq!(detect_language("Kubernetes API timeout"), Language::English);
        assert_eq!(recognised_language("PTO policy?"), None);
        assert_eq!(
            recognised_language("política de vacaciones"),
            Some(Language::Spanish)
        );
    }
}
