use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;
use verity_core::{Answer, Citation, Grounding, GroundingStatus, RetrievedChunk};

use crate::language::{Language, detect_language};
use crate::terms::content_terms;

/// Below this cosine similarity between the question and the best passage, Verity abstains.
/// Calibrated on `../shared/data/squad/dev.json` with `verity eval squad` (see the README).
pub const DEFAULT_ABSTAIN_BELOW: f32 = 0.35;
/// An extractive answer quotes at most this many sentences.
pub const DEFAULT_MAX_SENTENCES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExtractiveConfig {
    pub abstain_below: f32,
    pub max_sentences: usize,
}

impl Default for ExtractiveConfig {
    fn default() -> Self {
        Self {
            abstain_below: DEFAULT_ABSTAIN_BELOW,
            max_sentences: DEFAULT_MAX_SENTENCES,
        }
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

    /// Whether the evidence is too weak to answer from: no passage, or the best passage's
    /// similarity under the threshold.
    pub fn should_abstain(&self, passages: &[RetrievedChunk]) -> bool {
        passages
            .first()
            .is_none_or(|best| best.score < self.config.abstain_below)
    }

    /// Answers `question` from `passages` (best first). Every passage is listed as a citation,
    /// numbered from 1 in the order given.
    pub fn answer(&self, question: &str, passages: &[RetrievedChunk]) -> Answer {
        let citations: Vec<Citation> = passages.iter().enumerate().map(|(i, p)| citation(i, p)).collect();
        let language = detect_language(question);
        if self.should_abstain(passages) {
            let reason = match passages.first() {
                None => "no passage in this collection".to_string(),
                Some(best) => format!(
                    "best passage similarity {:.3} is below the threshold {:.3}",
                    best.score, self.config.abstain_below
                ),
            };
            return Answer {
                answer: abstention_message(language, !passages.is_empty()).to_string(),
                citations,
                grounding: Grounding {
                    status: GroundingStatus::Abstained,
                    reason: Some(reason),
                },
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
            grounding: Grounding {
                status: GroundingStatus::Grounded,
                reason: Some(format!("every sentence is quoted from passage {}", cited.join(", "))),
            },
        }
    }

    /// The sentences that cover most of the question's content terms, best passage first on
    /// ties, returned in reading order (by passage rank, then position).
    fn choose_sentences(&self, question: &str, passages: &[RetrievedChunk]) -> Vec<Candidate> {
        let question_terms = content_terms(question);
        let mut candidates: Vec<Candidate> = passages
            .iter()
            .enumerate()
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
                Candidate { passage, position, text, coverage }
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
            // Nothing matches word for word: quote the opening of the best passage, which the
            // dense model judged closest.
            candidates.retain(|c| c.passage == 0);
            candidates.sort_by_key(|c| c.position);
            candidates.into_iter().take(self.config.max_sentences.min(2)).collect()
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

fn citation(index: usize, passage: &RetrievedChunk) -> Citation {
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
        heading_path: passage.heading_path.clone(),
    }
}

fn abstention_message(language: Language, has_passages: bool) -> &'static str {
    match (language, has_passages) {
        (Language::English, true) => {
            "No supporting passage was found in the documents for this question. The nearest passages are listed, but none of them answers it."
        }
        (Language::English, false) => "No supporting passage was found: this collection holds no documents yet.",
        (Language::Spanish, true) => {
            "No se encontró ningún pasaje en los documentos que respalde una respuesta a esta pregunta. Se listan los pasajes más cercanos, pero ninguno la responde."
        }
        (Language::Spanish, false) => "No se encontró ningún pasaje: esta colección aún no tiene documentos.",
        (Language::Portuguese, true) => {
            "Nenhum trecho dos documentos sustenta uma resposta a esta pergunta. Os trechos mais próximos estão listados, mas nenhum a responde."
        }
        (Language::Portuguese, false) => "Nenhum trecho encontrado: esta coleção ainda não tem documentos.",
    }
}

/// The sentences of a passage, as plain text: lines are split into sentences; headings, table
/// rule lines and bare list markers are left out; Markdown emphasis and list markers are
/// removed.
fn sentences(passage: &str) -> Vec<String> {
    passage
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !is_rule(line))
        .flat_map(|line| {
            let line = strip_list_marker(line);
            line.split_sentence_bounds()
                .map(|s| clean_markup(s.trim()))
                .filter(|s| s.chars().any(char::is_alphanumeric))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn is_rule(line: &str) -> bool {
    line.chars().all(|c| matches!(c, '-' | '|' | ':' | ' ' | '=' | '*' | '_'))
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
    sentence.replace("**", "").replace("__", "").replace('`', "")
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
            score,
        }
    }

    #[test]
    fn answers_quote_the_best_matching_sentence_with_its_citation() {
        let answerer = ExtractiveAnswerer::default();
        let passages = [
            passage("## Annual leave\n\nEmployees receive **20 working days** of annual leave. Requests go through Kallpa.", 0.7),
            passage("Sick leave needs a certificate.", 0.5),
        ];
        let answer = answerer.answer("How many days of annual leave do employees receive?", &passages);
        assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
        assert!(answer.answer.starts_with("Employees receive 20 working days of annual leave. [1]"), "{}", answer.answer);
        assert!(!answer.answer.contains("Sick"));
        assert_eq!(answer.citations.len(), 2);
        assert_eq!(answer.citations[0].id, 1);
    }

    #[test]
    fn weak_evidence_abstains_and_still_lists_the_nearest_passages() {
        let answerer = ExtractiveAnswerer::default();
        let passages = [passage("Sick leave needs a certificate.", 0.1)];
        let answer = answerer.answer("Who won the 1998 World Cup?", &passages);
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(answer.answer.starts_with("No supporting passage was found"));
        assert!(!answer.answer.contains('['));
        assert_eq!(answer.citations.len(), 1);
    }

    #[test]
    fn abstention_speaks_the_language_of_the_question() {
        let answer = ExtractiveAnswerer::default().answer("¿Quién ganó el mundial de 1998?", &[]);
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(answer.answer.starts_with("No se encontró"));
    }
}
