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

const SPANISH: &[&str] = &[
    "el", "la", "los", "las", "que", "de", "del", "y", "en", "un", "una", "es", "por", "para",
    "cuántos", "cuántas", "cuánto", "cuándo", "cómo", "qué", "dónde", "quién", "puedo", "mi", "se",
    "con", "al", "hay", "son", "cuál",
];
const PORTUGUESE: &[&str] = &[
    "o", "os", "as", "que", "de", "do", "da", "dos", "das", "e", "em", "no", "na", "um", "uma",
    "é", "por", "para", "quantos", "quantas", "quanto", "quando", "como", "onde", "quem", "posso",
    "meu", "minha", "com", "ao", "há", "são", "qual", "não", "férias",
];
const ENGLISH: &[&str] = &[
    "the", "a", "an", "of", "and", "in", "is", "are", "to", "for", "how", "what", "when", "where",
    "who", "which", "do", "does", "can", "my", "i", "many", "much", "with", "on",
];

/// A cheap guess at the language of a text (a question or a whole document), by counting
/// function words. English wins ties: it is the fallback when nothing is recognised.
pub fn detect_language(text: &str) -> Language {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let score = |list: &[&str]| words.iter().filter(|w| list.contains(&w.as_str())).count();
    let (en, es, pt) = (score(ENGLISH), score(SPANISH), score(PORTUGUESE));
    let spanish_marks = text.contains('¿') || text.contains('ñ');
    let portuguese_marks = ["ção", "ções", "ã", "õ", "ê"]
        .iter()
        .any(|m| text.contains(m));
    if (es > en && es >= pt && !portuguese_marks) || (spanish_marks && es >= en) {
        Language::Spanish
    } else if pt > en || (portuguese_marks && pt >= en) {
        Language::Portuguese
    } else {
        Language::English
    }
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
}
