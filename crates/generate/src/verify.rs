//! Verification after generation: every sentence of a generated answer must cite a source that
//! was given, and its cited sources must support it. Unsupported sentences are removed and
//! reported.
//!
//! The support test is lexical, and documented so that operators can reason about it:
//! - **coverage**: at least `min_support` (default 0.6) of the sentence's content words —
//!   lowercased, accents folded, function words dropped, crudely stemmed, in English, Spanish
//!   and Portuguese — occur in the cited sources (text, title and section headings);
//! - **numbers**: every number in the sentence occurs in the cited sources, because a changed
//!   figure ("30 days" for "20 days") is the hallucination that matters most in a policy answer
//!   and changes only one word.
//!
//! A sentence with at most one content word and no number ("Sure.") is kept without a citation. An embedding test
//! was left out on purpose: the embedding model is English-only, scores any two Spanish texts as
//! similar, and would cost milliseconds per answer where this takes microseconds.

use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;
use verity_core::{RetrievedChunk, UnsupportedSentence};

use crate::terms::content_terms;

/// The share of a sentence's content words that must appear in its cited sources.
pub const DEFAULT_MIN_SUPPORT: f32 = 0.6;

/// A source as verification sees it: its words and numbers, computed once per answer.
#[derive(Debug, Clone)]
pub struct SourceEvidence {
    terms: HashSet<String>,
    numbers: HashSet<String>,
}

impl SourceEvidence {
    pub fn new(passage: &RetrievedChunk) -> Self {
        let mut terms = content_terms(&passage.text);
        terms.extend(content_terms(&passage.title));
        for heading in &passage.heading_path {
            terms.extend(content_terms(heading));
        }
        Self {
            terms,
            numbers: numbers(&passage.text),
        }
    }
}

/// The outcome of verifying one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The answer with unsupported sentences and invalid citation markers removed.
    pub text: String,
    /// Sentences kept that cite a source and are supported by it.
    pub supported: usize,
    pub unsupported: Vec<UnsupportedSentence>,
    /// The source numbers the kept sentences cite, ascending.
    pub cited: Vec<u32>,
}

/// Verifies `answer` (already sanitized) against `sources`, numbered from 1.
pub fn verify(answer: &str, sources: &[SourceEvidence], min_support: f32) -> Verification {
    let mut kept = String::new();
    let mut supported = 0;
    let mut unsupported = Vec::new();
    let mut cited = HashSet::new();

    for sentence in split_sentences(answer) {
        let (plain, markers) = strip_markers(&sentence);
        let terms = content_terms(&plain);
        if markers.is_empty() && terms.len() <= 1 && numbers(&plain).is_empty() {
            // A connective ("Sure.", "In short:") states nothing to check.
            kept.push_str(&sentence);
            continue;
        }
        let given: Vec<u32> = markers
            .iter()
            .copied()
            .filter(|&n| n >= 1 && n as usize <= sources.len())
            .collect();
        let verdict = if given.is_empty() && markers.is_empty() {
            Err("cites no source".to_string())
        } else if given.is_empty() {
            Err(format!(
                "cites {}, which {} not among the {} sources given",
                list_markers(&markers),
                if markers.len() == 1 { "is" } else { "are" },
                sources.len()
            ))
        } else {
            check_support(&plain, &terms, &given, sources, min_support)
        };
        match verdict {
            Ok(()) => {
                supported += 1;
                cited.extend(given.iter().copied());
                kept.push_str(&remove_invalid_markers(&sentence, sources.len()));
            }
            Err(reason) => unsupported.push(UnsupportedSentence {
                sentence: sentence.trim().to_string(),
                citations: markers,
                reason,
            }),
        }
    }

    let mut cited: Vec<u32> = cited.into_iter().collect();
    cited.sort_unstable();
    Verification {
        text: kept.trim().to_string(),
        supported,
        unsupported,
        cited,
    }
}

fn check_support(
    plain: &str,
    terms: &HashSet<String>,
    given: &[u32],
    sources: &[SourceEvidence],
    min_support: f32,
) -> Result<(), String> {
    let cited: Vec<&SourceEvidence> = given.iter().map(|&n| &sources[n as usize - 1]).collect();
    if let Some(number) = numbers(plain)
        .into_iter()
        .find(|n| !cited.iter().any(|s| s.numbers.contains(n)))
    {
        return Err(format!(
            "the number {number} does not appear in {}",
            list_markers(given)
        ));
    }
    if terms.is_empty() {
        return Ok(());
    }
    let found = terms
        .iter()
        .filter(|t| cited.iter().any(|s| s.terms.contains(*t)))
        .count();
    let coverage = found as f32 / terms.len() as f32;
    if coverage >= min_support {
        Ok(())
    } else {
        Err(format!(
            "only {:.0}% of its words appear in {} (at least {:.0}% needed)",
            coverage * 100.0,
            list_markers(given),
            min_support * 100.0
        ))
    }
}

fn list_markers(markers: &[u32]) -> String {
    markers.iter().map(|n| format!("[{n}]")).collect()
}

/// Sentences with their trailing whitespace. Citation markers that open a sentence (`… leave.
/// [1] Next …`) belong to the sentence before.
fn split_sentences(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in text.split_sentence_bounds() {
        let leading = leading_markers_len(piece);
        if leading > 0
            && let Some(last) = out.last_mut()
        {
            last.push_str(&piece[..leading]);
            let rest = &piece[leading..];
            if !rest.trim().is_empty() {
                out.push(rest.to_string());
            } else {
                last.push_str(rest);
            }
            continue;
        }
        out.push(piece.to_string());
    }
    out
}

/// Bytes taken at the start of `piece` by whitespace and `[n]` markers.
fn leading_markers_len(piece: &str) -> usize {
    let mut end = 0;
    let mut rest = piece;
    loop {
        let trimmed = rest.trim_start();
        let skipped = rest.len() - trimmed.len();
        match marker_at_start(trimmed) {
            Some((len, _)) => {
                end += skipped + len;
                rest = &trimmed[len..];
            }
            None => {
                // Punctuation right after the markers (`[1].`) belongs to them too.
                let punct = trimmed
                    .chars()
                    .take_while(|c| matches!(c, '.' | ',' | ';' | '!' | '?'))
                    .map(char::len_utf8)
                    .sum::<usize>();
                return if end == 0 { 0 } else { end + skipped + punct };
            }
        }
    }
}

/// A `[n]` or `[n, m]` marker at the start of `s`: its length and numbers.
fn marker_at_start(s: &str) -> Option<(usize, Vec<u32>)> {
    let inner_end = s.strip_prefix('[')?.find(']')?;
    let inner = &s[1..1 + inner_end];
    if inner.is_empty()
        || !inner
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
    {
        return None;
    }
    let numbers: Option<Vec<u32>> = inner
        .split(',')
        .map(|n| n.trim().parse::<u32>().ok())
        .collect();
    Some((inner_end + 2, numbers?))
}

/// The sentence without its markers, and the marker numbers in order of appearance.
fn strip_markers(sentence: &str) -> (String, Vec<u32>) {
    let mut plain = String::with_capacity(sentence.len());
    let mut markers = Vec::new();
    let mut rest = sentence;
    while let Some(pos) = rest.find('[') {
        plain.push_str(&rest[..pos]);
        match marker_at_start(&rest[pos..]) {
            Some((len, numbers)) => {
                for n in numbers {
                    if !markers.contains(&n) {
                        markers.push(n);
                    }
                }
                rest = &rest[pos + len..];
            }
            None => {
                plain.push('[');
                rest = &rest[pos + 1..];
            }
        }
    }
    plain.push_str(rest);
    (plain, markers)
}

/// Drops markers that name no given source from a kept sentence (`[1][7]` → `[1]`).
fn remove_invalid_markers(sentence: &str, sources: usize) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut rest = sentence;
    while let Some(pos) = rest.find('[') {
        out.push_str(&rest[..pos]);
        match marker_at_start(&rest[pos..]) {
            Some((len, numbers)) => {
                let valid: Vec<String> = numbers
                    .iter()
                    .filter(|&&n| n >= 1 && n as usize <= sources)
                    .map(u32::to_string)
                    .collect();
                if !valid.is_empty() {
                    out.push_str(&format!("[{}]", valid.join(", ")));
                }
                rest = &rest[pos + len..];
            }
            None => {
                out.push('[');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The numbers in a text, normalised: `1,500` and `1.500` (thousands) and `1500` all become
/// `1500`; a decimal comma becomes a point.
fn numbers(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut raw = String::new();
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (matches!(chars[i], ',' | '.')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            raw.push(chars[i]);
            i += 1;
        }
        found.insert(normalise_number(&raw));
    }
    found
}

fn normalise_number(raw: &str) -> String {
    let groups: Vec<&str> = raw.split([',', '.']).collect();
    let thousands = groups.len() > 1 && groups[1..].iter().all(|g| g.len() == 3);
    if thousands {
        groups.concat()
    } else {
        raw.replace(',', ".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(title: &str, text: &str) -> SourceEvidence {
        SourceEvidence::new(&RetrievedChunk {
            chunk_id: "c".into(),
            document_id: "d".into(),
            collection: "default".into(),
            title: title.into(),
            source: "/kb/x.md".into(),
            start: 0,
            end: text.len(),
            text: text.into(),
            heading_path: vec![],
            page: None,
            score: 0.5,
            similarity: 0.5,
        })
    }

    fn sources() -> Vec<SourceEvidence> {
        vec![
            source(
                "Leave policy",
                "Employees receive 20 working days of annual leave per calendar year. Unused days expire on 31 March.",
            ),
            source(
                "Expenses",
                "Meals on business trips are reimbursed up to 45 euros per day with receipts.",
            ),
        ]
    }

    #[test]
    fn supported_sentences_are_kept_with_their_citations() {
        let v = verify(
            "Employees receive 20 working days of annual leave each calendar year [1]. Meals are reimbursed up to 45 euros per day [2].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert!(v.unsupported.is_empty(), "{:?}", v.unsupported);
        assert_eq!(v.supported, 2);
        assert_eq!(v.cited, [1, 2]);
    }

    #[test]
    fn a_citation_to_a_source_not_given_is_unsupported() {
        let v = verify(
            "Employees receive 20 days of annual leave [3].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 0);
        assert_eq!(v.unsupported[0].citations, [3]);
        assert!(v.unsupported[0].reason.contains("not among the 2 sources"));
        assert_eq!(v.text, "");
    }

    #[test]
    fn a_sentence_its_cited_passage_does_not_support_is_removed() {
        let v = verify(
            "Employees receive 20 working days of annual leave [1]. Employees may also work remotely from any country for six months [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 1);
        assert_eq!(v.unsupported.len(), 1);
        assert!(
            v.unsupported[0]
                .sentence
                .starts_with("Employees may also work remotely")
        );
        assert!(
            v.unsupported[0]
                .reason
                .contains("of its words appear in [1]")
        );
        assert_eq!(
            v.text,
            "Employees receive 20 working days of annual leave [1]."
        );
    }

    #[test]
    fn a_changed_number_is_unsupported() {
        let v = verify(
            "Employees receive 30 working days of annual leave [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 0);
        assert!(v.unsupported[0].reason.contains("number 30"));
    }

    #[test]
    fn the_right_source_must_be_cited() {
        let v = verify(
            "Meals are reimbursed up to 45 euros per day [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 0);
    }

    #[test]
    fn uncited_claims_are_removed_and_connectives_kept() {
        let v = verify(
            "Sure! The CEO founded the company in 1999. Employees receive 20 working days of annual leave [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.unsupported.len(), 1);
        assert_eq!(v.unsupported[0].reason, "cites no source");
        assert_eq!(
            v.text,
            "Sure! Employees receive 20 working days of annual leave [1]."
        );
    }

    #[test]
    fn markers_after_the_full_stop_belong_to_the_sentence_before() {
        let v = verify(
            "Employees receive 20 working days of annual leave. [1] Unused days expire on 31 March. [1]",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 2, "{:?}", v.unsupported);
        assert!(v.unsupported.is_empty());
    }

    #[test]
    fn invalid_markers_are_dropped_from_a_supported_sentence() {
        let v = verify(
            "Employees receive 20 working days of annual leave [1][9].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(
            v.text,
            "Employees receive 20 working days of annual leave [1]."
        );
    }

    #[test]
    fn spanish_answers_are_checked_against_spanish_sources() {
        let sources = [source(
            "Vacaciones",
            "Cada empleado tiene 30 días corridos de vacaciones pagadas por año.",
        )];
        let v = verify(
            "Cada empleado tiene 30 días de vacaciones pagadas al año [1]. Además recibe un bono de 500 dólares [1].",
            &sources,
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 1);
        assert_eq!(v.unsupported.len(), 1);
    }

    #[test]
    fn numbers_are_compared_in_their_written_forms() {
        assert_eq!(
            numbers("1,500 and 1.500 and 1500"),
            HashSet::from(["1500".to_string()])
        );
        assert!(numbers("2,5 %").contains("2.5"));
        assert!(numbers("on 31 March.").contains("31"));
    }
}
