/// The languages Verity writes its own messages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Spanish,
    Portuguese,
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

/// A cheap guess at the language of a short text (a question), by counting function words.
/// English wins ties: it is the fallback when nothing is recognised.
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
