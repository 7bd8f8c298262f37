//! Verification after generation: every sentence of a generated answer is checked against all
//! the sources that were given, whatever it cites. The model's `[n]` markers are its claim;
//! the citations are Verity's finding:
//!
//! - a sentence its cited sources support keeps its markers;
//! - a supported sentence without a marker gets the marker of the source that supports it
//!   (the best one; two only when no single source covers it): **attributed**;
//! - a sentence whose marker names a source that does not support it (or one not given) gets
//!   the marker of the source that does: **corrected**;
//! - a sentence no source supports is removed, whatever it cites, with the reason;
//! - a sentence saying the sources do not answer ([`crate::no_answer`]) is the model
//!   abstaining, not a claim;
//! - a sentence with one content word and no number is checked like any other: a source that
//!   holds the word makes it a cited answer ("Miami." to "Where was it held?", as small models
//!   answer); otherwise it is a connective ("Sure."), kept without markers, as is a sentence
//!   with no content word at all (it states nothing to cite).
//!
//! Whether a source supports a sentence is [`crate::support::check`]: enough of its words
//! (`min_support`, default 0.6 of its content words, stemmed, accents folded, function words of
//! the three languages dropped) in the source's text, title and headings, and its numbers with
//! their units, dates, names, negations and roles consistent with the source. All of it is
//! lexical and runs in microseconds. An embedding test was left out on purpose: the embedding
//! model is English-only, scores any two Spanish texts as similar, and would cost milliseconds
//! per answer.

use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;
use verity_core::{
    AttributedSentence, CitationAction, Language, RetrievedChunk, UnsupportedSentence,
    detect_language,
};

use crate::no_answer::says_no_answer;
use crate::support::{Analysis, Failure, check};

/// The share of a sentence's content words that must appear in the source that supports it.
pub const DEFAULT_MIN_SUPPORT: f32 = 0.6;

/// A source as verification sees it, analysed once per answer.
#[derive(Debug, Clone)]
pub struct SourceEvidence {
    analysis: Analysis,
}

impl SourceEvidence {
    pub fn new(passage: &RetrievedChunk) -> Self {
        let mut analysis = Analysis::new(&passage.text, detect_language(&passage.text));
        analysis.add_words(&passage.title);
        for heading in &passage.heading_path {
            analysis.add_words(heading);
        }
        Self { analysis }
    }
}

/// The outcome of verifying one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The answer with unsupported sentences removed and every kept sentence carrying the
    /// markers of the sources that support it.
    pub text: String,
    /// Sentences kept, each supported by the sources its markers name.
    pub supported: usize,
    pub unsupported: Vec<UnsupportedSentence>,
    /// Kept sentences whose markers Verity set (attributed or corrected).
    pub attributed: Vec<AttributedSentence>,
    /// Sentences in which the model said the sources do not answer (kept in `text`, without
    /// markers).
    pub no_answer: Vec<String>,
    /// The source numbers the kept sentences cite, ascending.
    pub cited: Vec<u32>,
}

/// Verifies `answer` (already sanitized) against `sources`, numbered from 1, reading it in the
/// language it looks written in.
pub fn verify(answer: &str, sources: &[SourceEvidence], min_support: f32) -> Verification {
    verify_in(answer, detect_language(answer), sources, min_support)
}

/// [`verify`], for an answer written in `language` (the question's: the prompt asks for it).
/// A short answer's language is easy to mistake ("no" is a Spanish negation and Portuguese
/// "in the").
pub fn verify_in(
    answer: &str,
    language: Language,
    sources: &[SourceEvidence],
    min_support: f32,
) -> Verification {
    let mut kept = String::new();
    let mut supported = 0;
    let mut unsupported = Vec::new();
    let mut attributed = Vec::new();
    let mut no_answer = Vec::new();
    let mut cited = HashSet::new();

    let sentences = split_sentences(answer);
    let count = sentences.len();
    for (i, sentence) in sentences.into_iter().enumerate() {
        let (plain, markers) = strip_markers(&sentence);
        if says_no_answer(&plain) {
            no_answer.push(tidy(&plain).trim().to_string());
            kept.push_str(&tidy(&plain));
            continue;
        }
        if i + 1 < count && is_list_number(&plain) {
            // "4." of a numbered list, split off from the item after it: a marker, not a claim
            // (a number that ends the answer is the answer: "6.").
            kept.push_str(&tidy(&plain));
            continue;
        }
        let claim = Analysis::new(&plain, language);
        // One word and no number: a connective ("Sure.", "In short:") or the answer itself
        // ("Miami.", "CBS", which small models write for "where"/"who" questions).
        let one_word = claim.term_count() <= 1 && !claim.has_quantity();
        if claim.term_count() == 0 && !claim.has_quantity() {
            // States nothing to cite.
            kept.push_str(&tidy(&plain));
            continue;
        }
        let given: Vec<u32> = markers
            .iter()
            .copied()
            .filter(|&n| n >= 1 && n as usize <= sources.len())
            .collect();
        match attribute(&claim, &given, sources, min_support) {
            Ok(found) => {
                supported += 1;
                cited.extend(found.iter().copied());
                if found == given {
                    kept.push_str(&remove_invalid_markers(&sentence, sources.len()));
                    continue;
                }
                let text = with_markers(&plain, &found);
                attributed.push(AttributedSentence {
                    sentence: text.trim().to_string(),
                    action: if markers.is_empty() {
                        CitationAction::Attributed
                    } else {
                        CitationAction::Corrected
                    },
                    model_citations: markers,
                    citations: found,
                });
                kept.push_str(&text);
            }
            // A word no source holds is taken for a connective and kept without a citation,
            // as before one-word answers were checked: it claims nothing a source could back.
            Err(_) if one_word => kept.push_str(&tidy(&plain)),
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
        attributed,
        no_answer,
        cited,
    }
}

/// Whether a sentence is only the number of a list item ("4.", "12)").
fn is_list_number(sentence: &str) -> bool {
    let Some(number) = sentence.trim().strip_suffix(['.', ')']) else {
        return false;
    };
    !number.is_empty() && number.len() <= 3 && number.bytes().all(|b| b.is_ascii_digit())
}

/// The sources that support `claim`: the ones it cites if they do, else the best single
/// source, else the best pair; or why none does.
fn attribute(
    claim: &Analysis,
    given: &[u32],
    sources: &[SourceEvidence],
    min_support: f32,
) -> Result<Vec<u32>, String> {
    let pick = |numbers: &[u32]| -> Vec<&Analysis> {
        numbers
            .iter()
            .map(|&n| &sources[n as usize - 1].analysis)
            .collect()
    };
    if sources.is_empty() {
        return Err("no source was given".to_string());
    }
    if !given.is_empty() && check(claim, &pick(given), &list_markers(given), min_support).is_ok() {
        return Ok(given.to_vec());
    }
    let mut best: Option<(f32, u32)> = None;
    let mut failures: Vec<(u32, Failure)> = Vec::new();
    for n in 1..=sources.len() as u32 {
        match check(claim, &pick(&[n]), &format!("[{n}]"), min_support) {
            // Ties go to the source ranked higher (the lower number).
            Ok(coverage) if best.is_none_or(|(c, _)| coverage > c) => best = Some((coverage, n)),
            Ok(_) => {}
            Err(failure) => failures.push((n, failure)),
        }
    }
    if let Some((_, n)) = best {
        return Ok(vec![n]);
    }
    // No single source covers it: the two closest together might (a sentence joining two
    // facts).
    failures.sort_by(|a, b| b.1.coverage.total_cmp(&a.1.coverage).then(a.0.cmp(&b.0)));
    let mut pair: Option<(f32, Vec<u32>)> = None;
    for (first, _) in failures.iter().take(2) {
        for (second, _) in &failures {
            if second == first {
                continue;
            }
            let mut both = vec![*first, *second];
            both.sort_unstable();
            if let Ok(coverage) = check(claim, &pick(&both), &list_markers(&both), min_support)
                && pair.as_ref().is_none_or(|(c, _)| coverage > *c)
            {
                pair = Some((coverage, both));
            }
        }
    }
    if let Some((_, both)) = pair {
        return Ok(both);
    }
    // Report the closest source's objection, preferring one the sentence cites.
    let closest = failures
        .iter()
        .max_by(|a, b| {
            a.1.coverage
                .total_cmp(&b.1.coverage)
                .then(given.contains(&a.0).cmp(&given.contains(&b.0)))
                .then(b.0.cmp(&a.0))
        })
        .map(|(_, f)| f.reason.clone())
        .unwrap_or_default();
    Err(format!("no source supports it: {closest}"))
}

/// `plain` (a sentence without markers) with `markers` before its closing punctuation.
fn with_markers(plain: &str, markers: &[u32]) -> String {
    let tidied = tidy(plain);
    let body = tidied.trim_end();
    let trailing = &tidied[body.len()..];
    let punct_len: usize = body
        .chars()
        .rev()
        .take_while(|c| matches!(c, '.' | '!' | '?' | ':' | ';' | '…'))
        .map(char::len_utf8)
        .sum();
    let (text, punct) = body.split_at(body.len() - punct_len);
    format!(
        "{} {}{punct}{trailing}",
        text.trim_end(),
        list_markers(markers)
    )
}

/// Spaces left before punctuation where markers were taken out (`leave [1].` → `leave .`).
fn tidy(plain: &str) -> String {
    let mut out = String::with_capacity(plain.len());
    let mut chars = plain.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let mut spaces = 1;
            while chars.peek() == Some(&' ') {
                chars.next();
                spaces += 1;
            }
            match chars.peek() {
                Some('.' | ',' | ';' | ':' | '!' | '?') => {}
                _ => out.push_str(&" ".repeat(spaces.min(1))),
            }
            continue;
        }
        out.push(c);
    }
    out
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
    fn a_citation_to_a_source_not_given_is_corrected() {
        let v = verify(
            "Employees receive 20 days of annual leave [3].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 1);
        assert_eq!(v.text, "Employees receive 20 days of annual leave [1].");
        assert_eq!(v.attributed[0].action, CitationAction::Corrected);
        assert_eq!(v.attributed[0].model_citations, [3]);
        assert_eq!(v.attributed[0].citations, [1]);
        assert_eq!(v.cited, [1]);
    }

    #[test]
    fn a_supported_sentence_without_a_marker_is_attributed() {
        // The answer a real model wrote, word for word in the source, without a marker.
        let sources = [
            source(
                "Expenses",
                "Meals on business trips are reimbursed up to 45 euros per day with receipts.",
            ),
            source(
                "Annual vacation",
                "If you cannot, you may carry over a maximum of 5 unused days into the following calendar year. Carried-over days must be taken by 31 March.",
            ),
        ];
        let v = verify(
            "According to the policy, you can carry over a maximum of 5 unused days into the following calendar year.",
            &sources,
            DEFAULT_MIN_SUPPORT,
        );
        assert!(v.unsupported.is_empty(), "{:?}", v.unsupported);
        assert_eq!(
            v.text,
            "According to the policy, you can carry over a maximum of 5 unused days into the following calendar year [2]."
        );
        assert_eq!(v.attributed[0].action, CitationAction::Attributed);
        assert!(v.attributed[0].model_citations.is_empty());
        assert_eq!(v.cited, [2]);
    }

    #[test]
    fn a_sentence_joining_two_sources_cites_both() {
        let v = verify(
            "Employees receive 20 working days of annual leave and meals are reimbursed up to 45 euros per day.",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 1, "{:?}", v.unsupported);
        assert_eq!(v.cited, [1, 2]);
        assert!(v.text.ends_with("45 euros per day [1][2]."), "{}", v.text);
    }

    #[test]
    fn a_sentence_the_model_cites_correctly_is_left_as_written() {
        let v = verify(
            "Unused days expire on 31 March [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.text, "Unused days expire on 31 March [1].");
        assert!(v.attributed.is_empty());
    }

    #[test]
    fn saying_the_sources_do_not_answer_is_not_a_claim() {
        let v = verify(
            "The sources do not say whether unused days are paid out.",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 0);
        assert!(v.unsupported.is_empty());
        assert_eq!(v.no_answer.len(), 1);
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
                .contains("of its words appear in [1]"),
            "{}",
            v.unsupported[0].reason
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
    fn a_marker_naming_the_wrong_source_is_corrected() {
        let v = verify(
            "Meals are reimbursed up to 45 euros per day [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.supported, 1);
        assert_eq!(v.text, "Meals are reimbursed up to 45 euros per day [2].");
        assert_eq!(v.attributed[0].action, CitationAction::Corrected);
    }

    #[test]
    fn uncited_claims_are_removed_and_connectives_kept() {
        let v = verify(
            "Sure! The CEO founded the company in 1999. Employees receive 20 working days of annual leave [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert_eq!(v.unsupported.len(), 1);
        assert!(
            v.unsupported[0].reason.starts_with("no source supports it"),
            "{}",
            v.unsupported[0].reason
        );
        assert_eq!(
            v.text,
            "Sure! Employees receive 20 working days of annual leave [1]."
        );
    }

    #[test]
    fn a_one_word_answer_a_source_holds_is_cited_and_counts_as_an_answer() {
        // Small models answer "who"/"where" questions with the name alone; it used to be taken
        // for a connective, so the answer counted as empty and turned into an abstention.
        let v = verify("Receipts", &sources(), DEFAULT_MIN_SUPPORT);
        assert_eq!(v.supported, 1, "{v:?}");
        assert_eq!(v.text, "Receipts [2]");
        // A bare number is the answer when a source has it, in figures or in words.
        let counted = vec![source("Awards", "Lady Gaga has won six Grammy awards.")];
        let v = verify("6", &counted, DEFAULT_MIN_SUPPORT);
        assert_eq!((v.supported, v.text.as_str()), (1, "6 [1]"), "{v:?}");
        let v = verify("2", &counted, DEFAULT_MIN_SUPPORT);
        assert_eq!(
            v.supported, 0,
            "a number no source has is not an answer: {v:?}"
        );
        // A word no source holds stays an uncited connective, never a removed claim.
        let v = verify("Absolutely.", &sources(), DEFAULT_MIN_SUPPORT);
        assert_eq!((v.supported, v.unsupported.len()), (0, 0), "{v:?}");
        assert_eq!(v.text, "Absolutely.");
    }

    #[test]
    fn the_numbers_of_a_numbered_list_are_not_claims() {
        let v = verify(
            "1. Employees receive 20 working days of annual leave [1].\n2. Unused days expire on 31 March [1].",
            &sources(),
            DEFAULT_MIN_SUPPORT,
        );
        assert!(v.unsupported.is_empty(), "{:?}", v.unsupported);
        assert_eq!(v.supported, 2, "{v:?}");
        assert!(v.text.contains("2. Unused days"), "{}", v.text);
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
}
