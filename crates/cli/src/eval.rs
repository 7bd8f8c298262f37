//! `verity eval squad`: retrieval quality and abstention on a SQuAD v2.0-format file.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use verity_core::{DocumentFormat, ParsedDocument};
use verity_generate::term_coverage;
use verity_ingest::content_hash;

use crate::app::Verity;
use crate::pipeline::SourceDocument;

/// Passages retrieved per question (hit@10 and MRR@10 need ten).
const EVAL_DEPTH: usize = 10;

#[derive(Deserialize)]
struct SquadFile {
    data: Vec<Article>,
}

#[derive(Deserialize)]
struct Article {
    title: String,
    paragraphs: Vec<Paragraph>,
}

#[derive(Deserialize)]
struct Paragraph {
    context: String,
    qas: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    question: String,
    #[serde(default)]
    answers: Vec<GoldAnswer>,
    #[serde(default)]
    is_impossible: bool,
}

#[derive(Deserialize)]
struct GoldAnswer {
    text: String,
}

/// Abstention rates at one setting of the two gates (with `--calibrate`).
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub abstain_below: f32,
    pub min_term_coverage: f32,
    pub abstain_rate_answerable: f64,
    pub abstain_rate_unanswerable: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub answerable: usize,
    #[serde(rename = "hit@1")]
    pub hit_at_1: f64,
    #[serde(rename = "hit@5")]
    pub hit_at_5: f64,
    #[serde(rename = "hit@10")]
    pub hit_at_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    pub unanswerable: usize,
    pub abstain_rate_answerable: f64,
    pub abstain_rate_unanswerable: f64,
    /// The abstention settings the rates were measured with.
    pub abstain_below: f32,
    pub min_term_coverage: f32,
    pub documents: usize,
    pub chunks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<CalibrationRow>>,
}

/// Ingests the file's articles into a fresh `collection` (one document per article, paragraphs
/// separated by blank lines), asks every question, and scores retrieval and abstention.
pub async fn eval_squad(
    verity: &Verity,
    file: &Path,
    collection: &str,
    calibrate: bool,
) -> anyhow::Result<EvalReport> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let squad: SquadFile = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a SQuAD v2.0 JSON file", file.display()))?;

    verity.delete_collection(collection).await?;
    let documents: Vec<SourceDocument> = squad
        .data
        .iter()
        .map(|article| {
            let text = article
                .paragraphs
                .iter()
                .map(|p| p.context.trim())
                .collect::<Vec<_>>()
                .join("\n\n");
            SourceDocument {
                source: format!("squad:{}#{}", file.display(), article.title),
                content_hash: content_hash(text.as_bytes()),
                parsed: ParsedDocument {
                    title: article.title.replace('_', " "),
                    format: DocumentFormat::Text,
                    text,
                    headings: Vec::new(),
                },
            }
        })
        .collect();
    let documents_count = documents.len();
    let ingest = verity.ingest_documents(collection, documents).await?;

    let mut hits = [0usize; 3];
    let mut reciprocal_ranks = 0.0;
    // Per question: the best passage's similarity and the question-word coverage of the
    // passages an answer is built from (the default top_k).
    let mut answerable_signals = Vec::new();
    let mut unanswerable_signals = Vec::new();
    let answer_depth = verity.settings.query.top_k as usize;
    for article in &squad.data {
        for paragraph in &article.paragraphs {
            for question in &paragraph.qas {
                let (passages, _) = verity
                    .retrieve(&question.question, collection, EVAL_DEPTH)
                    .await?;
                let best = passages.first().map(|p| p.score).unwrap_or(f32::MIN);
                let used = &passages[..passages.len().min(answer_depth)];
                let signals = (best, term_coverage(&question.question, used));
                if question.is_impossible || question.answers.is_empty() {
                    unanswerable_signals.push(signals);
                    continue;
                }
                answerable_signals.push(signals);
                let golds: Vec<String> = question
                    .answers
                    .iter()
                    .map(|a| a.text.to_lowercase())
                    .collect();
                let rank = passages.iter().position(|p| {
                    let text = p.text.to_lowercase();
                    golds.iter().any(|g| text.contains(g.as_str()))
                });
                if let Some(rank) = rank {
                    for (slot, k) in [1, 5, 10].iter().enumerate() {
                        if rank < *k {
                            hits[slot] += 1;
                        }
                    }
                    reciprocal_ranks += 1.0 / (rank as f64 + 1.0);
                }
            }
        }
    }

    let config = verity.answerer.config();
    let rate = |signals: &[(f32, f32)], below: f32, coverage: f32| {
        if signals.is_empty() {
            0.0
        } else {
            signals
                .iter()
                .filter(|(s, c)| *s < below || *c < coverage)
                .count() as f64
                / signals.len() as f64
        }
    };
    let answerable = answerable_signals.len();
    let fraction = |n: usize| {
        if answerable == 0 {
            0.0
        } else {
            n as f64 / answerable as f64
        }
    };
    let calibration = calibrate.then(|| {
        let mut rows = Vec::new();
        for coverage in [0.0f32, 0.25, 0.34, 0.5, 0.6, 0.67, 0.75] {
            for i in 0..=16 {
                let below = 0.10 + 0.025 * i as f32;
                rows.push(CalibrationRow {
                    abstain_below: (below * 1000.0).round() / 1000.0,
                    min_term_coverage: coverage,
                    abstain_rate_answerable: rate(&answerable_signals, below, coverage),
                    abstain_rate_unanswerable: rate(&unanswerable_signals, below, coverage),
                });
            }
        }
        rows
    });
    Ok(EvalReport {
        answerable,
        hit_at_1: fraction(hits[0]),
        hit_at_5: fraction(hits[1]),
        hit_at_10: fraction(hits[2]),
        mrr_at_10: if answerable == 0 {
            0.0
        } else {
            reciprocal_ranks / answerable as f64
        },
        unanswerable: unanswerable_signals.len(),
        abstain_rate_answerable: rate(
            &answerable_signals,
            config.abstain_below,
            config.min_term_coverage,
        ),
        abstain_rate_unanswerable: rate(
            &unanswerable_signals,
            config.abstain_below,
            config.min_term_coverage,
        ),
        abstain_below: config.abstain_below,
        min_term_coverage: config.min_term_coverage,
        documents: documents_count,
        chunks: ingest.chunks_embedded,
        calibration,
    })
}
