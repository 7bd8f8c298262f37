use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;
use verity_core::{
    Answer, Citation, Grounding, GroundingStatus, Language, RetrievedChunk, detect_language,
    recognised_language,
};

use crate::terms::{closest_in_other_language, content_terms, coverage_in_language};

/// Below this cosine similarity between the question and the best passage, Verity abstains.
/// all-MiniLM-L6-v2's threshold, calibrated on `../shared/data/squad/dev.json` with `verity
/// eval squad`; the service passes the threshold of the model it runs (`verity_embed::MODELS`,
/// README "Retrieval and abstention"): cosines of different models are not comparable.
pub const DEFAULT_ABSTAIN_BELOW: f32 = 0.35;
/// Abstain when fewer than this share of the question's content words (stemmed, accents
/// folded) appear in the retrieved passages. Needed beside the similarity threshold because an
/// English-only embedding model finds any two texts in the same other language fairly similar.
pub const DEFAULT_MIN_TERM_COVERAGE: f32 = 0.5;
/// An extractive answer quotes at most this many sentences.
pub const DEFAULT_MAX_SENTENCES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExtractiveConfig {
    /// Abstain when the closest passage's cosine similarity is below this.
    pub abstain_below: f32,
    /// The same, when the closest passage is written in another language than the question:
    /// a question's cosine to a passage in another language runs lower than to one in its own,
    /// so one threshold calibrated on same-language pairs declines answerable questions asked
    /// across languages.
    pub abstain_below_across_languages: f32,
    pub min_term_coverage: f32,
    pub max_sentences: usize,
}

impl Default for ExtractiveConfig {
    fn default() -> Self {
        Self {
            abstain_below: DEFAULT_ABSTAIN_BELOW,
            abstain_below_across_languages: DEFAULT_ABSTAIN_BELOW,
            min_term_coverage: DEFAULT_MIN_TERM_COVERAGE,
            max_sentences: DEFAULT_MAX_SENTENCES,
        }
    }
}

/// What the abstention gate reads of a question and the passages an answer would be built
/// from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSignals {
    /// The cosine similarity of the closest passage; `None` when there is no passage.
    pub best_similarity: Option<f32>,
    /// The closest passage is written in another language than the question.
    pub across_languages: bool,
    /// The share of the question's content words found in the passages written in its
    /// language (1.0 across languages: words do not carry over).
    pub term_coverage: f32,
}

impl GateSignals {
    pub fn read(question: &str, passages: &[RetrievedChunk]) -> Self {
        let language = recognised_language(question);
        let across_languages = closest_in_other_language(language, passages);
        Self {
            best_similarity: passages.iter().map(|p| p.similarity).reduce(f32::max),
            across_languages,
            term_coverage: if across_languages {
                1.0
            } else {
                coverage_in_language(question, language, passages)
            },
        }
    }
}

impl ExtractiveConfig {
    /// Why evidence with these signals is too weak to answer from, if it is: no passage, the
    /// closest passage's similarity under the threshold (the one for passages in another
    /// language when it is in one), or too few of the question's words in the passages.
    pub fn abstention_reason(&self, signals: &GateSignals) -> Option<String> {
        let Some(best) = signals.best_similarity else {
            return Some("no passage in this collection".to_string());
        };
        if signals.across_languages && best < self.abstain_below_across_languages {
            return Some(format!(
                "best passage similarity {:.3} is below the threshold {:.3} for passages in another language than the question",
                best, self.abstain_below_across_languages
            ));
        }
        if !signals.across_languages && best < self.abstain_below {
            return Some(format!(
                "best passage similarity {:.3} is below the threshold {:.3}",
                best, self.abstain_below
            ));
        }
        if signals.term_coverage < self.min_term_coverage {
            return Some(format!(
                "only {:.0}% of the question's words appear in the passages (at least {:.0}% needed)",
                signals.term_coverage * 100.0,
                self.min_term_coverage * 100.0
            ));
        }
        None
    }
}

/// Composes answers by quoting retrieved sentences.
#[derive(Debug, Clone, Default)]
pub struct ExtractiveAnswerer {
    config: ExtractiveConfig,
}

/// A sentence of a passage, a candidate for quoting.
struct Candidate {
    passage: usize,
    position: usize,
    text: String,
    coverage: f32,
}

impl ExtractiveAnswerer {
    pub fn new(config: ExtractiveConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> ExtractiveConfig {
        self.config
    }

    /// Why the evidence is too weak to answer from, if it is (see
    /// [`ExtractiveConfig::abstention_reason`]). In sparse and hybrid modes the ranking score is
    /// not a similarity; the gate always looks at the cosine similarity of the closest passage.
    pub fn abstention_reason(&self, question: &str, passages: &[RetrievedChunk]) -> Option<String> {
        self.config
            .abstention_reason(&GateSignals::read(question, passages))
    }

    /// Answers `question` from `passages` (best first). Every passage is listed as a citation,
    /// numbered from 1 in the order given.
    pub fn answer(&self, question: &str, passages: &[RetrievedChunk]) -> Answer {
        let citations: Vec<Citation> = passages
            .iter()
            .enumerate()
            .map(|(i, p)| citation(i, p))
            .collect();
        let language = detect_language(question);
        if let Some(reason) = self.abstention_reason(question, passages) {
            return Answer {
                answer: abstention_message(language, !passages.is_empty()).to_string(),
                citations,
                grounding: Grounding::new(GroundingStatus::Abstained, reason),
                generator: String::new(),
                id: String::new(),
                prompt_hash: None,
            };
        }

        let chosen = self.choose_sentences(question, passages);
        let answer = chosen
            .iter()
            .map(|c| format!("{} [{}]", c.text, c.passage + 1))
            .collect::<Vec<_>>()
            .join(" ");
        let cited: Vec<String> = {
            let mut ids: Vec<usize> = chosen.iter().map(|c| c.passage + 1).collect();
            ids.dedup();
            ids.iter().map(|n| format!("[{n}]")).collect()
        };
        Answer {
            answer,
            citations,
            grounding: Grounding::new(
                GroundingStatus::Grounded,
                format!("every sentence is quoted from passage {}", cited.join(", ")),
            ),
            generator: String::new(),
            id: String::new(),
            prompt_hash: None,
        }
    }

    /// The sentences that cover most of the question's content terms, best passage first on
    /// ties, returned in reading order (by passage rank, then position).
    fn choose_sentences(&self, question: &str, passages: &[RetrievedChunk]) -> Vec<Candidate> {
        let question_terms = content_terms(question);
        // Quote only passages written in the language of the closest one (by cosine
        // similarity). Words match only within a language: a Spanish question answered by an
        // English passage would otherwise quote whichever Spanish passage shares a common verb.
        let language = passages
            .iter()
            .max_by(|a, b| a.similarity.total_cmp(&b.similarity))
            .map(|p| detect_language(&p.text));
        let mut candidates: Vec<Candidate> = passages
            .iter()
            .enumerate()
            .filter(|(_, p)| language.is_none_or(|l| detect_language(&p.text) == l))
            .flat_map(|(passage, p)| {
                sentences(&p.text)
                    .into_iter()
                    .enumerate()
                    .map(move |(position, text)| (passage, position, text))
            })
            .map(|(passage, position, text)| {
                let terms = content_terms(&text);
                let matched = question_terms.intersection(&terms).count();
                let coverage = if question_terms.is_empty() {
                    0.0
                } else {
                    matched as f32 / question_terms.len() as f32
                };
                Candidate {
                    passage,
                    position,
                    text,
                    coverage,
                }
            })
            .collect();

        // Rank: coverage, then the passage's retrieval rank, then position in the passage.
        candidates.sort_by(|a, b| {
            b.coverage
                .total_cmp(&a.coverage)
                .then(a.passage.cmp(&b.passage))
                .then(a.position.cmp(&b.position))
        });
        let best_coverage = candidates.first().map(|c| c.coverage).unwrap_or(0.0);
        let mut chosen: Vec<Candidate> = if best_coverage == 0.0 {
            // Nothing matches word for word: quote the opening of the best-ranked passage that
            // may be quoted.
            let first = candidates.iter().map(|c| c.passage).min();
            candidates.retain(|c| Some(c.passage) == first);
            candidates.sort_by_key(|c| c.position);
            candidates
                .into_iter()
                .take(self.config.max_sentences.min(2))
                .collect()
        } else {
            let mut seen = HashSet::new();
            candidates
                .into_iter()
                .filter(|c| c.coverage >= best_coverage * 0.5)
                .filter(|c| seen.insert(c.text.to_lowercase()))
                .take(self.config.max_sentences)
                .collect()
        };
        chosen.sort_by_key(|c| (c.passage, c.position));
        chosen
    }
}

pub(crate) fn citation(index: usize, passage: &RetrievedChunk) -> Citation {
    Citation {
        id: index as u32 + 1,
        document_id: passage.document_id.clone(),
        title: passage.title.clone(),
        source: passage.source.clone(),
        chunk_id: passage.chunk_id.clone(),
        start: passage.start,
        end: passage.end,
        text: passage.text.clone(),
        score: passage.score,
        similarity: passage.similarity,
        heading_path: passage.heading_path.clone(),
        page: passage.page,
    }
}

pub(crate) fn abstention_message(language: Language, has_passages: bool) -> &'static str {
    match (language, has_passages) {
        (Language::English, true) => {
            "No supporting passage was found in the documents for this question. The nearest passages are listed, but none of them answers it."
        }
        (Language::English, false) => {
            "No supporting passage was found: this collection holds no documents yet."
        }
        (Language::Spanish, true) => {
            "No se encontró ningún pasaje en los documentos que respalde una respuesta a esta pregunta. Se listan los pasajes más cercanos, pero ninguno la responde."
        }
        (Language::Spanish, false) => {
            "No se encontró ningún pasaje: esta colección aún no tiene documentos."
        }
        (Language::Portuguese, true) => {
            "Nenhum trecho dos documentos sustenta uma resposta a esta pergunta. Os trechos mais próximos estão listados, mas nenhum a responde."
        }
        (Language::Portuguese, false) => {
            "Nenhum trecho encontrado: esta coleção ainda não tem documentos."
        }
    }
}

/// The quotable units of a passage, as plain text: sentences, and a line that introduces a
/// list ("Your password must:") joined with its items, which only make sense together.
/// Headings, table rules and bare markers are left out; Markdown emphasis is removed.
fn sentences(passage: &str) -> Vec<String> {
    let lines: Vec<&str> = passage
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !is_rule(line))
        .collect();
    let mut units = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let list_follows = lines.get(i + 1).is_some_and(|next| is_list_item(next));
        if line.ends_with(':') && list_follows {
            let items: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| is_list_item(l))
                .take(MAX_LIST_ITEMS)
                .map(|l| strip_list_marker(l).trim_end_matches([';', '.', ',']))
                .collect();
            i += 1 + items.len();
            units.push(clean_markup(&format!("{line} {}.", items.join("; "))));
            continue;
        }
        units.extend(
            strip_list_marker(line)
                .split_sentence_bounds()
                .map(|s| clean_markup(s.trim()))
                .filter(|s| s.chars().any(char::is_alphanumeric)),
        );
        i += 1;
    }
    units
}

/// A list introduction is quoted with at most this many of its items.
const MAX_LIST_ITEMS: usize = 8;

fn is_list_item(line: &str) -> bool {
    line.starts_with("- ") || line.starts_with("* ") || line.starts_with("+ ") || {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && line[digits..].starts_with(". ")
    }
}

fn is_rule(line: &str) -> bool {
    line.chars()
        .all(|c| matches!(c, '-' | '|' | ':' | ' ' | '=' | '*' | '_'))
}

fn strip_list_marker(line: &str) -> &str {
    let trimmed = line.trim_start_matches(['-', '*', '+', '>']).trim_start();
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && trimmed[digits..].starts_with(". ") {
        &trimmed[digits + 2..]
    } else {
        trimmed
    }
}

fn clean_markup(sentence: &str) -> String {
    sentence
        .replace("**", "")
        .replace("__", "")
        .replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str, score: f32) -> RetrievedChunk {
        RetrievedChunk {
            chunk_id: format!("c-{score}"),
            document_id: "d".into(),
            collection: "default".into(),
            title: "Leave".into(),
            source: "/kb/leave.md".into(),
            start: 0,
            end: text.chars().count(),
            text: text.into(),
            heading_path: vec![],
            page: None,
            score,
            similarity: score,
        }
    }

    #[test]
    fn answers_quote_the_best_matching_sentence_with_its_citation() {
        let answerer = ExtractiveAnswerer::default();
        let passages = [
            passage(
                "## Annual leave\n\nEmployees receive **20 working days** of annual leave. Requests go through Kallpa.",
                0.7,
            ),
            passage("Sick leave needs a certificate.", 0.5),
        ];
        let answer = answerer.answer(
            "How many days of annual leave do employees receive?",
            &passages,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
        assert!(
            answer
                .answer
                .starts_with("Employees receive 20 working days of annual leave. [1]"),
            "{}",
            answer.answer
        );
        assert!(!answer.answer.contains("Sick"));
        assert_eq!(answer.citations.len(), 2);
        assert_eq!(answer.citations[0].id, 1);
    }

    #[test]
    fn weak_evidence_abstains_and_still_lists_the_nearest_passages() {
        let answerer = ExtractiveAnswerer::default();
        let passages = [passage("Sick leave needs a certificate.", 0.1)];
        let answer = answerer.answer("How many days of sick leave?", &passages);
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(answer.answer.starts_with("No supporting passage was found"));
        assert!(!answer.answer.contains('['));
        assert_eq!(answer.citations.len(), 1);
    }

    #[test]
    fn a_question_answered_in_another_language_quotes_the_closest_passage() {
        // The dense model found the English password policy for a Spanish question; a Spanish
        // page about travel shares the question's "tener" and must not be quoted instead.
        let answerer = ExtractiveAnswerer::new(ExtractiveConfig {
            abstain_below: 0.5,
            abstain_below_across_languages: 0.5,
            ..ExtractiveConfig::default()
        });
        let passages = [
            passage(
                "Your corporate password must be at least 14 characters long. Change it every year.",
                0.87,
            ),
            passage(
                "Para usar tu vehículo debes tener licencia de conducir vigente y un seguro.",
                0.80,
            ),
        ];
        let answer = answerer.answer(
            "¿Cuántos caracteres debe tener como mínimo mi contraseña?",
            &passages,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
        assert!(answer.answer.contains("14 characters"), "{}", answer.answer);
        assert!(!answer.answer.contains("licencia"), "{}", answer.answer);
        assert!(!answer.answer.contains("[2]"), "{}", answer.answer);
    }

    #[test]
    fn a_passage_in_another_language_is_judged_by_its_own_threshold() {
        let config = ExtractiveConfig {
            abstain_below: 0.80,
            abstain_below_across_languages: 0.75,
            ..ExtractiveConfig::default()
        };
        let question = "¿Cuántos días de vacaciones se pueden pasar al año siguiente?";
        let english = passage(
            "Employees may carry over up to five unused vacation days into the next year.",
            0.78,
        );
        let spanish = passage(
            "Los empleados pueden pasar hasta cinco días de vacaciones no usados al año siguiente.",
            0.78,
        );

        let across = GateSignals::read(question, std::slice::from_ref(&english));
        assert!(across.across_languages);
        assert_eq!(config.abstention_reason(&across), None);

        // The same similarity to a passage in the question's own language is under its threshold.
        let same = GateSignals::read(question, std::slice::from_ref(&spanish));
        assert!(!same.across_languages);
        let reason = config.abstention_reason(&same).unwrap();
        assert!(reason.contains("threshold 0.800"), "{reason}");

        // Across languages, too far is still too far, and the reason says which threshold.
        let far = GateSignals::read(question, &[passage(&english.text, 0.70)]);
        let reason = config.abstention_reason(&far).unwrap();
        assert!(
            reason.contains("0.750 for passages in another language"),
            "{reason}"
        );

        // A question that shows no language is never "across".
        let names = GateSignals::read("Kubernetes API timeout", std::slice::from_ref(&english));
        assert!(!names.across_languages);
    }

    #[test]
    fn a_list_is_quoted_with_its_introduction() {
        let units = sentences(
            "## Rules\n\nYour password must:\n\n- be at least **14** characters long;\n- not contain your name.\n\nPassphrases help.",
        );
        assert_eq!(
            units,
            [
                "Your password must: be at least 14 characters long; not contain your name.",
                "Passphrases help."
            ]
        );
    }

    #[test]
    fn passages_that_share_too_few_question_words_are_not_an_answer() {
        let answerer = ExtractiveAnswerer::default();
        let passages = [passage(
            "El aguinaldo de Fiestas Patrias se paga en septiembre.",
            0.6,
        )];
        let answer = answerer.answer("¿Quién ganó el mundial de fútbol de 1998?", &passages);
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(
            answer
                .grounding
                .reason
                .unwrap()
                .contains("question's words")
        );
    }

    #[test]
    fn abstention_speaks_the_language_of_the_question() {
        let answer = ExtractiveAnswerer::default().answer("¿Quién ganó el mundial de 1998?", &[]);
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(answer.answer.starts_with("No se encontró"));
    }
}
