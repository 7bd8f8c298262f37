//! `verity eval squad`: retrieval quality and abstention on a SQuAD v2.0-format file, per
//! retrieval mode. The SQuAD reading and ingestion here serve `verity eval answers` too.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use verity_core::{
    Caller, Collections, DocumentFormat, ParsedDocument, RetrievalMode, SearchFilter, VerityError,
};
use verity_generate::{ExtractiveConfig, GateSignals};
use verity_ingest::content_hash;

use verity_service::Verity;
use verity_service::pipeline::{IngestInput, IngestOptions, Quiet, SourceDocument};

/// Passages retrieved per question (hit@10, MRR@10 and nDCG@10 need ten).
const EVAL_DEPTH: usize = 10;

/// A SQuAD file, v1.1 or v2.0 (v1.1 has no `is_impossible`: every question is answerable).
#[derive(Deserialize)]
pub(crate) struct SquadFile {
    pub(crate) data: Vec<Article>,
}

#[derive(Deserialize)]
pub(crate) struct Article {
    pub(crate) title: String,
    pub(crate) paragraphs: Vec<Paragraph>,
}

#[derive(Deserialize)]
pub(crate) struct Paragraph {
    pub(crate) context: String,
    pub(crate) qas: Vec<Question>,
}

#[derive(Deserialize)]
pub(crate) struct Question {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) question: String,
    #[serde(default)]
    pub(crate) answers: Vec<GoldAnswer>,
    #[serde(default)]
    pub(crate) is_impossible: bool,
}

impl Question {
    /// SQuAD 2.0 marks unanswerable questions; a question without a gold answer is one too.
    pub(crate) fn answerable(&self) -> bool {
        !self.is_impossible && !self.answers.is_empty()
    }
}

#[derive(Deserialize)]
pub(crate) struct GoldAnswer {
    pub(crate) text: String,
}

/// What [`ingest_squad`] put into the collection.
pub(crate) struct IngestedSquad {
    pub(crate) squad: SquadFile,
    pub(crate) documents: usize,
    pub(crate) chunks: usize,
}

/// Reads a SQuAD file and ingests its articles into a fresh `collection` (one document per
/// article, paragraphs separated by blank lines).
pub(crate) async fn ingest_squad(
    verity: &Verity,
    file: &Path,
    collection: &str,
) -> anyhow::Result<IngestedSquad> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let squad: SquadFile = serde_json::from_slice(&raw).with_context(|| {
        format!(
            "{} is not a SQuAD JSON file (v1.1 or v2.0: data[].paragraphs[].qas[])",
            file.display()
        )
    })?;

    // A fresh collection for each evaluation (none yet on a first run).
    match Collections::delete_collection(verity, &Caller::local(), collection).await {
        Ok(_) | Err(VerityError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
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
                    pages: Vec::new(),
                },
                modified: None,
            }
        })
        .collect();
    let documents_count = documents.len();
    let ingest = verity
        .ingest(
            &Caller::local(),
            IngestInput::Parsed(documents),
            &IngestOptions::new(collection),
            &Quiet,
        )
        .await?;
    Ok(IngestedSquad {
        squad,
        documents: documents_count,
        chunks: ingest.chunks_embedded,
    })
}

/// Abstention rates at one setting of the two gates (with `--calibrate`).
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub abstain_below: f32,
    pub min_term_coverage: f32,
    pub abstain_rate_answerable: f64,
    pub abstain_rate_unanswerable: f64,
}

/// The figures of one retrieval mode.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub mode: RetrievalMode,
    pub answerable: usize,
    #[serde(rename = "hit@1")]
    pub hit_at_1: f64,
    #[serde(rename = "hit@5")]
    pub hit_at_5: f64,
    #[serde(rename = "hit@10")]
    pub hit_at_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    pub unanswerable: usize,
    pub abstain_rate_answerable: f64,
    pub abstain_rate_unanswerable: f64,
    /// The abstention settings the rates were measured with.
    pub abstain_below: f32,
    pub abstain_below_across_languages: f32,
    pub min_term_coverage: f32,
    /// Questions (answerable or not) whose closest passage is in another language.
    pub asked_across_languages: usize,
    pub documents: usize,
    pub chunks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<CalibrationRow>>,
}

/// Ingests the file's articles into a fresh `collection` (one document per article, paragraphs
/// separated by blank lines), then asks every question in each mode and scores retrieval and
/// abstention.
pub async fn eval_squad(
    verity: &Verity,
    file: &Path,
    collection: &str,
    modes: &[RetrievalMode],
    calibrate: bool,
) -> anyhow::Result<Vec<EvalReport>> {
    let IngestedSquad {
        squad,
        documents,
        chunks,
    } = ingest_squad(verity, file, collection).await?;
    let chunk_texts = collection_chunk_texts(verity, collection).await?;

    let mut reports = Vec::new();
    for &mode in modes {
        let mut report =
            eval_mode(verity, &squad, collection, mode, &chunk_texts, calibrate).await?;
        report.documents = documents;
        report.chunks = chunks;
        reports.push(report);
    }
    Ok(reports)
}

async fn collection_chunk_texts(verity: &Verity, collection: &str) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for document in verity.store().documents_in_collection(collection).await? {
        texts.extend(
            verity
                .store()
                .chunks_of(&document.id)
                .await?
                .into_iter()
                .map(|c| c.text.to_lowercase()),
        );
    }
    Ok(texts)
}

/// nDCG@10 with binary relevance: a chunk is relevant when it contains a gold answer; the ideal
/// ranking puts every relevant chunk of the collection first.
fn ndcg_at_10(found_relevant: &[bool], relevant_in_collection: usize) -> f64 {
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = found_relevant
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, r)| **r)
        .map(|(i, _)| gain(i))
        .sum();
    let ideal: f64 = (0..relevant_in_collection.min(10)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

async fn eval_mode(
    verity: &Verity,
    squad: &SquadFile,
    collection: &str,
    mode: RetrievalMode,
    chunk_texts: &[String],
    calibrate: bool,
) -> anyhow::Result<EvalReport> {
    let filter = SearchFilter::collection(collection);
    let mut hits = [0usize; 3];
    let mut reciprocal_ranks = 0.0;
    let mut ndcg = 0.0;
    // Per question: the best passage similarity and the question-word coverage of the passages
    // an answer is built from (the default top_k) — the two signals of the abstention gate.
    let mut answerable_signals = Vec::new();
    let mut unanswerable_signals = Vec::new();
    let answer_depth = verity.config().query.top_k as usize;
    for question in squad
        .data
        .iter()
        .flat_map(|a| &a.paragraphs)
        .flat_map(|p| &p.qas)
    {
        let (passages, _) = verity
            .retrieve(
                &Caller::local(),
                &question.question,
                &filter,
                EVAL_DEPTH,
                mode,
            )
            .await?;
        let used = &passages[..passages.len().min(answer_depth)];
        let signals = GateSignals::read(&question.question, used);
        if !question.answerable() {
            unanswerable_signals.push(signals);
            continue;
        }
        answerable_signals.push(signals);
        let golds: Vec<String> = question
            .answers
            .iter()
            .map(|a| a.text.to_lowercase())
            .collect();
        let contains_gold = |text: &str| golds.iter().any(|g| text.contains(g.as_str()));
        let relevant: Vec<bool> = passages
            .iter()
            .map(|p| contains_gold(&p.text.to_lowercase()))
            .collect();
        if let Some(rank) = relevant.iter().position(|r| *r) {
            for (slot, k) in [1, 5, 10].iter().enumerate() {
                if rank < *k {
                    hits[slot] += 1;
                }
            }
            reciprocal_ranks += 1.0 / (rank as f64 + 1.0);
        }
        let relevant_in_collection = chunk_texts.iter().filter(|t| contains_gold(t)).count();
        ndcg += ndcg_at_10(&relevant, relevant_in_collection);
    }

    let config = verity.answerer().extractive().config();
    let rate = |signals: &[GateSignals], config: &ExtractiveConfig| {
        if signals.is_empty() {
            0.0
        } else {
            signals
                .iter()
                .filter(|s| config.abstention_reason(s).is_some())
                .count() as f64
                / signals.len() as f64
        }
    };
    let answerable = answerable_signals.len();
    let mean = |total: f64| {
        if answerable == 0 {
            0.0
        } else {
            total / answerable as f64
        }
    };
    let calibration = calibrate.then(|| {
        let mut rows = Vec::new();
        for coverage in [0.0f32, 0.25, 0.34, 0.5, 0.6, 0.67, 0.75] {
            // Wide enough for every model: all-MiniLM-L6-v2's thresholds sit near 0.35,
            // multilingual-e5's near 0.8 (its cosines are compressed into the upper range).
            for i in 0..=34 {
                let below = 0.10 + 0.025 * i as f32;
                // One threshold for passages in the question's language and in another: a
                // set asks in one language over documents in one, so one of them applies.
                let row = ExtractiveConfig {
                    abstain_below: below,
                    abstain_below_across_languages: below,
                    min_term_coverage: coverage,
                    ..config
                };
                rows.push(CalibrationRow {
                    abstain_below: (below * 1000.0).round() / 1000.0,
                    min_term_coverage: coverage,
                    abstain_rate_answerable: rate(&answerable_signals, &row),
                    abstain_rate_unanswerable: rate(&unanswerable_signals, &row),
                });
            }
        }
        rows
    });
    Ok(EvalReport {
        mode,
        answerable,
        hit_at_1: mean(hits[0] as f64),
        hit_at_5: mean(hits[1] as f64),
        hit_at_10: mean(hits[2] as f64),
        mrr_at_10: mean(reciprocal_ranks),
        ndcg_at_10: mean(ndcg),
        unanswerable: unanswerable_signals.len(),
        abstain_rate_answerable: rate(&answerable_signals, &config),
        abstain_rate_unanswerable: rate(&unanswerable_signals, &config),
        abstain_below: config.abstain_below,
        abstain_below_across_languages: config.abstain_below_across_languages,
        min_term_coverage: config.min_term_coverage,
        asked_across_languages: answerable_signals
            .iter()
            .chain(&unanswerable_signals)
            .filter(|s| s.across_languages)
            .count(),
        documents: 0,
        chunks: 0,
        calibration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_is_one_for_an_ideal_ranking_and_less_otherwise() {
        assert!((ndcg_at_10(&[true, false, false], 1) - 1.0).abs() < 1e-9);
        let second = ndcg_at_10(&[false, true], 1);
        assert!((second - 1.0 / 3f64.log2()).abs() < 1e-9);
        assert_eq!(ndcg_at_10(&[false; 10], 1), 0.0);
        assert_eq!(ndcg_at_10(&[false; 10], 0), 0.0);
    }
}
