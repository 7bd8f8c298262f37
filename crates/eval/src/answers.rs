//! `verity eval answers`: end-to-end answer quality on a SQuAD-format file, with whatever
//! generator the settings choose (extractive, a local model, an OpenAI-compatible engine).
//!
//! Each question goes through the whole answer path (retrieval, the abstention gate, the
//! model, verification, fallback) as a user's would. The scores follow SQuAD's official
//! evaluation: answers and gold answers are normalised (lowercase, no punctuation, no articles —
//! English, Spanish and Portuguese ones — single spaces) before "the gold answer is in the
//! answer" and token F1 are computed. A generated answer is longer than a SQuAD span, so
//! containment, not exact match, is the headline figure; F1 shows how much else it says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;
use verity_core::{
    AnswerService, Caller, GroundingStatus, Language, QueryRequest, UnsupportedSentence,
    detect_language,
};

use crate::squad::{IngestedSquad, ingest_squad};
use verity_service::Verity;

#[derive(Debug, Clone)]
pub struct AnswerEvalOptions {
    /// The collection the articles are ingested into (replaced on every run).
    pub collection: String,
    /// Ask this many questions, drawn at random with `seed`, answerable and unanswerable in the
    /// file's proportion; `None`: every question.
    pub sample: Option<usize>,
    pub seed: u64,
}

/// One question's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionOutcome {
    pub id: String,
    pub question: String,
    /// The language of the question's article.
    pub language: Language,
    pub answerable: bool,
    pub gold: Vec<String>,
    pub status: GroundingStatus,
    pub answer: String,
    /// Why the status (an abstention's or a fallback's reason included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who wrote the answer: the model, or `extractive` (also after a fallback).
    pub generator: String,
    pub latency_ms: f64,
    /// A gold answer, normalised, occurs in the normalised answer (answered questions only).
    pub contains_gold: bool,
    /// Best token F1 against the gold answers (0 when abstained).
    pub f1: f64,
    /// Passages the answer's `[n]` markers cite, and how many of them contain a gold answer.
    pub cited: usize,
    pub cited_with_gold: usize,
    /// Sentences verification removed.
    pub removed: Vec<UnsupportedSentence>,
}

impl QuestionOutcome {
    fn answered(&self) -> bool {
        self.status != GroundingStatus::Abstained
    }
}

/// The figures of a set of questions (one language, or all).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerTally {
    pub questions: usize,
    pub answerable: usize,
    pub unanswerable: usize,
    /// Answerable questions answered with a gold answer in the text.
    pub answered_with_gold: usize,
    /// Answerable questions answered without any gold answer: wrong but grounded (every kept
    /// sentence is supported by a passage, yet it does not answer the question).
    pub answered_without_gold: usize,
    pub abstained_on_answerable: usize,
    pub abstained_on_unanswerable: usize,
    /// Unanswerable questions answered anyway (with passages that support the sentences, but
    /// not the question).
    pub answered_on_unanswerable: usize,
    /// Shares of the answerable (first three) and unanswerable (last two) questions.
    pub answered_with_gold_rate: f64,
    pub answered_without_gold_rate: f64,
    pub abstained_on_answerable_rate: f64,
    pub abstained_on_unanswerable_rate: f64,
    pub answered_on_unanswerable_rate: f64,
    /// Mean best token F1 over the answerable questions (an abstention scores 0).
    pub mean_f1_answerable: f64,
    /// Of the passages cited by answers to answerable questions, the share that contain a gold
    /// answer; `None` when no answer cited any.
    pub citation_precision: Option<f64>,
    /// Answers that fell back to extractive (the model failed or ran out of time).
    pub fallbacks: usize,
    /// Sentences removed by verification, over all answers.
    pub removed_sentences: usize,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerEvalReport {
    pub file: String,
    /// The generator the settings chose (`extractive`, `mistralrs:NAME`, `openai:MODEL`).
    pub generator: String,
    pub documents: usize,
    pub chunks: usize,
    pub sample: Option<usize>,
    pub seed: u64,
    pub overall: AnswerTally,
    pub by_language: BTreeMap<String, AnswerTally>,
    pub questions: Vec<QuestionOutcome>,
}

/// A question to ask, with its article's language.
struct Asked<'a> {
    question: &'a crate::squad::Question,
    language: Language,
}

/// Ingests the file's articles into a fresh collection, asks the (sampled) questions one at a
/// time through the whole answer path, and scores the answers. `progress` advances once per
/// question.
pub async fn eval_answers(
    verity: &Verity,
    file: &Path,
    options: &AnswerEvalOptions,
    progress: &ProgressBar,
) -> anyhow::Result<AnswerEvalReport> {
    let IngestedSquad {
        squad,
        documents,
        chunks,
    } = ingest_squad(verity, file, &options.collection).await?;
    let all: Vec<Asked<'_>> = squad
        .data
        .iter()
        .flat_map(|article| {
            // The article's text tells its language more reliably than a short question.
            let text: String = article
                .paragraphs
                .iter()
                .map(|p| p.context.as_str())
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(4000)
                .collect();
            let language = detect_language(&text);
            article
                .paragraphs
                .iter()
                .flat_map(|p| &p.qas)
                .map(move |question| Asked { question, language })
        })
        .collect();
    let chosen = stratified_sample(all.len(), |i| all[i].question.answerable(), options);

    progress.set_length(chosen.len() as u64);
    let mut outcomes = Vec::with_capacity(chosen.len());
    for i in chosen {
        let asked = &all[i];
        outcomes.push(ask(verity, &options.collection, asked).await?);
        progress.inc(1);
    }
    progress.finish_and_clear();

    let mut by_language: BTreeMap<String, Vec<&QuestionOutcome>> = BTreeMap::new();
    for outcome in &outcomes {
        by_language
            .entry(outcome.language.code().to_string())
            .or_default()
            .push(outcome);
    }
    Ok(AnswerEvalReport {
        file: file.display().to_string(),
        generator: verity.answerer().generator_name(),
        documents,
        chunks,
        sample: options.sample,
        seed: options.seed,
        overall: tally(&outcomes.iter().collect::<Vec<_>>()),
        by_language: by_language
            .into_iter()
            .map(|(language, outcomes)| (language, tally(&outcomes)))
            .collect(),
        questions: outcomes,
    })
}

async fn ask(
    verity: &Verity,
    collection: &str,
    asked: &Asked<'_>,
) -> anyhow::Result<QuestionOutcome> {
    let question = asked.question;
    let request = QueryRequest {
        question: question.question.clone(),
        collection: Some(collection.to_string()),
        top_k: None,
        mode: None,
        filter: None,
        stream: false,
    };
    let started = Instant::now();
    let (answer, _) = verity.query(&Caller::local(), request).await?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;

    let language = asked.language;
    let answerable = question.answerable();
    let gold: Vec<String> = question.answers.iter().map(|a| a.text.clone()).collect();
    let answered = answer.grounding.status != GroundingStatus::Abstained;
    let text = strip_markers(&answer.answer);
    let contains_gold = answered && answerable && contains_any(&text, &gold, language);
    let f1 = if answered && answerable {
        gold.iter()
            .map(|g| token_f1(&text, g, language))
            .fold(0.0, f64::max)
    } else {
        0.0
    };
    let markers = cited_markers(&answer.answer);
    let cited: Vec<&verity_core::Citation> = answer
        .citations
        .iter()
        .filter(|c| answered && markers.contains(&c.id))
        .collect();
    let cited_with_gold = cited
        .iter()
        .filter(|c| answerable && contains_any(&c.text, &gold, language))
        .count();
    Ok(QuestionOutcome {
        id: question.id.clone(),
        question: question.question.clone(),
        language,
        answerable,
        gold,
        status: answer.grounding.status,
        answer: answer.answer,
        reason: answer.grounding.reason,
        generator: answer.generator,
        latency_ms,
        contains_gold,
        f1,
        cited: cited.len(),
        cited_with_gold,
        removed: answer.grounding.unsupported,
    })
}

fn tally(outcomes: &[&QuestionOutcome]) -> AnswerTally {
    let mut t = AnswerTally {
        questions: outcomes.len(),
        ..AnswerTally::default()
    };
    let mut f1 = 0.0;
    let (mut cited, mut cited_with_gold) = (0, 0);
    for o in outcomes {
        t.removed_sentences += o.removed.len();
        if o.status == GroundingStatus::Fallback {
            t.fallbacks += 1;
        }
        match (o.answerable, o.answered()) {
            (true, true) => {
                if o.contains_gold {
                    t.answered_with_gold += 1;
                } else {
                    t.answered_without_gold += 1;
                }
                f1 += o.f1;
                cited += o.cited;
                cited_with_gold += o.cited_with_gold;
            }
            (true, false) => t.abstained_on_answerable += 1,
            (false, true) => t.answered_on_unanswerable += 1,
            (false, false) => t.abstained_on_unanswerable += 1,
        }
    }
    t.answerable = t.answered_with_gold + t.answered_without_gold + t.abstained_on_answerable;
    t.unanswerable = t.abstained_on_unanswerable + t.answered_on_unanswerable;
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    t.answered_with_gold_rate = share(t.answered_with_gold, t.answerable);
    t.answered_without_gold_rate = share(t.answered_without_gold, t.answerable);
    t.abstained_on_answerable_rate = share(t.abstained_on_answerable, t.answerable);
    t.abstained_on_unanswerable_rate = share(t.abstained_on_unanswerable, t.unanswerable);
    t.answered_on_unanswerable_rate = share(t.answered_on_unanswerable, t.unanswerable);
    t.mean_f1_answerable = if t.answerable == 0 {
        0.0
    } else {
        f1 / t.answerable as f64
    };
    t.citation_precision = (cited > 0).then(|| cited_with_gold as f64 / cited as f64);
    let mut latencies: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
    t.latency_p50_ms = percentile(&mut latencies, 50.0);
    t.latency_p95_ms = percentile(&mut latencies, 95.0);
    t
}

/// Nearest-rank percentile.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The indices (of `total` questions) to ask, in file order: all of them, or `sample` drawn
/// with the seed, answerable and unanswerable in the file's proportion.
fn stratified_sample(
    total: usize,
    answerable: impl Fn(usize) -> bool,
    options: &AnswerEvalOptions,
) -> Vec<usize> {
    let Some(n) = options.sample.filter(|n| *n < total) else {
        return (0..total).collect();
    };
    let (mut yes, mut no): (Vec<usize>, Vec<usize>) = (0..total).partition(|i| answerable(*i));
    let mut rng = SplitMix64(options.seed);
    rng.shuffle(&mut yes);
    rng.shuffle(&mut no);
    let take_yes = ((n as f64 * yes.len() as f64 / total as f64).round() as usize)
        .min(yes.len())
        .max(n.saturating_sub(no.len()));
    let mut chosen: Vec<usize> = yes[..take_yes]
        .iter()
        .chain(&no[..n - take_yes])
        .copied()
        .collect();
    chosen.sort_unstable();
    chosen
}

/// A small seeded generator (SplitMix64): the same seed draws the same sample on every
/// platform and version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The numbers of the `[n]` markers in an answer.
fn cited_markers(text: &str) -> HashSet<u32> {
    let mut found = HashSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(']')
            && let Ok(n) = rest[..close].trim().parse::<u32>()
        {
            found.insert(n);
        }
    }
    found
}

/// The answer without its `[n]` markers, which are not words of the answer.
fn strip_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].trim().parse::<u32>().is_ok() => {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Articles dropped by the normalisation, per language (SQuAD's English ones; MLQA's Spanish
/// ones; the Portuguese equivalents).
fn articles(language: Language) -> &'static [&'static str] {
    match language {
        Language::English => &["a", "an", "the"],
        Language::Spanish => &["el", "la", "los", "las", "un", "una", "unos", "unas"],
        Language::Portuguese => &["o", "a", "os", "as", "um", "uma", "uns", "umas"],
    }
}

/// SQuAD's normalisation as tokens: lowercase, punctuation removed, articles removed.
fn normalize(text: &str, language: Language) -> Vec<String> {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !is_punctuation(*c))
        .collect();
    let articles = articles(language);
    lowered
        .split_whitespace()
        .filter(|w| !articles.contains(w))
        .map(str::to_string)
        .collect()
}

/// ASCII punctuation (as SQuAD's `string.punctuation`) and the punctuation of Spanish and
/// Portuguese text and typography.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || "¿¡«»“”‘’„‹›–—…·".contains(c)
}

/// Whether any gold answer, normalised, occurs as a run of whole words in `text`, normalised.
fn contains_any(text: &str, gold: &[String], language: Language) -> bool {
    let haystack = format!(" {} ", normalize(text, language).join(" "));
    gold.iter().any(|g| {
        let needle = normalize(g, language).join(" ");
        !needle.is_empty() && haystack.contains(&format!(" {needle} "))
    })
}

/// SQuAD's token F1 between an answer and one gold answer.
fn token_f1(answer: &str, gold: &str, language: Language) -> f64 {
    let predicted = normalize(answer, language);
    let truth = normalize(gold, language);
    if predicted.is_empty() || truth.is_empty() {
        return if predicted == truth { 1.0 } else { 0.0 };
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for token in &truth {
        *counts.entry(token).or_default() += 1;
    }
    let mut common = 0;
    for token in &predicted {
        if let Some(n) = counts.get_mut(token.as_str())
            && *n > 0
        {
            *n -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / predicted.len() as f64;
    let recall = common as f64 / truth.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_drops_case_punctuation_and_each_languages_articles() {
        assert_eq!(
            normalize("The Denver Broncos!", Language::English),
            ["denver", "broncos"]
        );
        assert_eq!(
            normalize("¿Los normandos, en la Edad Media?", Language::Spanish),
            ["normandos", "en", "edad", "media"]
        );
        assert_eq!(
            normalize("Os normandos e a Normandia", Language::Portuguese),
            ["normandos", "e", "normandia"]
        );
        // "as" is an article in Portuguese only.
        assert_eq!(normalize("as well", Language::English), ["as", "well"]);
    }

    #[test]
    fn containment_is_on_whole_normalised_words() {
        let gold = vec!["the Denver Broncos".to_string()];
        assert!(contains_any(
            "The winners were Denver Broncos, in 2016 [1].",
            &gold,
            Language::English
        ));
        assert!(!contains_any(
            "Denver Broncosx won",
            &gold,
            Language::English
        ));
        assert!(!contains_any(
            "anything",
            &[String::new()],
            Language::English
        ));
    }

    #[test]
    fn token_f1_matches_squads_definition() {
        assert_eq!(
            token_f1("Denver Broncos", "the Denver Broncos", Language::English),
            1.0
        );
        // 1 common token; precision 1/2, recall 1/1.
        let f1 = token_f1("Broncos won", "Broncos", Language::English);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-9, "{f1}");
        assert_eq!(token_f1("Carolina", "Denver", Language::English), 0.0);
    }

    #[test]
    fn markers_are_read_and_stripped() {
        let text = "Ten days [1]. Twenty [2][3]. A [note] stays.";
        assert_eq!(cited_markers(text), HashSet::from([1, 2, 3]));
        let stripped = strip_markers(text);
        assert!(
            !stripped.contains("[1]") && stripped.contains("[note]"),
            "{stripped}"
        );
    }

    #[test]
    fn a_sample_keeps_the_files_proportion_and_depends_only_on_the_seed() {
        // 30 answerable (even indices below 60), 30 unanswerable, 40 more answerable.
        let answerable = |i: usize| i >= 60 || i.is_multiple_of(2);
        let options = |seed| AnswerEvalOptions {
            collection: "c".into(),
            sample: Some(10),
            seed,
        };
        let a = stratified_sample(100, answerable, &options(1));
        assert_eq!(a.len(), 10);
        assert_eq!(a.iter().filter(|i| answerable(**i)).count(), 7);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "in file order");
        assert_eq!(a, stratified_sample(100, answerable, &options(1)));
        assert_ne!(a, stratified_sample(100, answerable, &options(2)));
        // Larger than the file: every question.
        let all = AnswerEvalOptions {
            sample: Some(500),
            ..options(1)
        };
        assert_eq!(stratified_sample(100, answerable, &all).len(), 100);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 10.0);
        assert_eq!(percentile(&mut v, 95.0), 19.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }
}
