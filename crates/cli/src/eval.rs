//! `verity eval squad`: retrieval quality and abstention on a SQuAD v2.0-format file.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use verity_core::{DocumentFormat, ParsedDocument};
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

/// Abstention rates at one threshold (with `--calibrate`).
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub threshold: f32,
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
    /// The abstention threshold the rates were measured with.
    pub abstain_below: f32,
    pub documents: usize,
    pub chunks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<CalibrationRow>>,
}

/// Ingests the file's articles into a fresh `collection` (one document per article, paragraphs
/// separated by blank lines), asks every question, and scores retrieval and abstention.
pub async fn eval_squad(verity: &Verity, file: &Path, collection: &str, calibrate: bool) -> anyhow::Result<EvalReport> {
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
    let mut answerable_scores = Vec::new();
    let mut unanswerable_scores = Vec::new();
    for article in &squad.data {
        for paragraph in &article.paragraphs {
            for question in &paragraph.qas {
                let (passages, _) = verity.retrieve(&question.question, collection, EVAL_DEPTH).await?;
                let best = passages.first().map(|p| p.score).unwrap_or(f32::MIN);
                if question.is_impossible || question.answers.is_empty() {
                    unanswerable_scores.push(best);
                    continue;
                }
                answerable_scores.push(best);
                let golds: Vec<String> = question.answers.iter().map(|a| a.text.to_lowercase()).collect();
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

    let threshold = verity.answerer.config().abstain_below;
    let rate = |scores: &[f32], t: f32| {
        if scores.is_empty() {
            0.0
        } else {
            scores.iter().filter(|s| **s < t).count() as f64 / scores.len() as f64
        }
    };
    let answerable = answerable_scores.len();
    let fraction = |n: usize| if answerable == 0 { 0.0 } else { n as f64 / answerable as f64 };
    let calibration = calibrate.then(|| {
        (0..=32)
            .map(|i| {
                let t = 0.10 + 0.0125 * i as f32;
                CalibrationRow {
                    threshold: (t * 10000.0).round() / 10000.0,
                    abstain_rate_answerable: rate(&answerable_scores, t),
                    abstain_rate_unanswerable: rate(&unanswerable_scores, t),
                }
            })
            .collect()
    });
    Ok(EvalReport {
        answerable,
        hit_at_1: fraction(hits[0]),
        hit_at_5: fraction(hits[1]),
        hit_at_10: fraction(hits[2]),
        mrr_at_10: if answerable == 0 { 0.0 } else { reciprocal_ranks / answerable as f64 },
        unanswerable: unanswerable_scores.len(),
        abstain_rate_answerable: rate(&answerable_scores, threshold),
        abstain_rate_unanswerable: rate(&unanswerable_scores, threshold),
        abstain_below: threshold,
        documents: documents_count,
        chunks: ingest.chunks_embedded,
        calibration,
    })
}
