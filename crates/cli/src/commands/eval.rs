//! `verity eval`: retrieval and answer quality over SQuAD-format files.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use verity_cli::settings::Settings;
use verity_core::{GroundingStatus, RetrievalMode};
use verity_eval::{answers as eval_answers, squad as eval};

#[derive(Subcommand)]
pub(crate) enum EvalCommand {
    /// Evaluate on a SQuAD v2.0-format file.
    Squad {
        file: PathBuf,
        /// The collection the articles are ingested into (replaced on every run).
        #[arg(long, default_value = "squad-eval")]
        collection: String,
        /// Also print abstention rates over a range of thresholds.
        #[arg(long)]
        calibrate: bool,
        /// dense, sparse, hybrid, or all (default: query.mode).
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// End-to-end answer quality on a SQuAD-format file (v1.1 or v2.0) with the generator the
    /// settings choose: gold answers in the answers, abstentions, citation precision, latency.
    Answers {
        file: PathBuf,
        /// The collection the articles are ingested into (replaced on every run).
        #[arg(long, default_value = "answers-eval")]
        collection: String,
        /// Ask this many questions, drawn at random (answerable and unanswerable in the file's
        /// proportion); default: all.
        #[arg(long)]
        sample: Option<usize>,
        /// Seed of the sample.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report, with every question's outcome, as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn print_answer_eval(report: &eval_answers::AnswerEvalReport) {
    println!(
        "{}: {} documents, {} chunks; generator {}; {} questions{}",
        report.file,
        report.documents,
        report.chunks,
        report.generator,
        report.overall.questions,
        report
            .sample
            .map(|n| format!(" (sample of {n}, seed {})", report.seed))
            .unwrap_or_default()
    );
    let pct = |rate: f64| format!("{:.1}%", rate * 100.0);
    println!(
        "language  answerable  with gold  without gold  abstained | unanswerable  abstained  answered | mean F1  citation precision  fallbacks  removed  p50 ms  p95 ms"
    );
    let rows = report
        .by_language
        .iter()
        .map(|(language, t)| (language.as_str(), t))
        .chain(std::iter::once(("all", &report.overall)));
    for (language, t) in rows {
        println!(
            "{:<8}  {:>10}  {:>9}  {:>12}  {:>9} | {:>12}  {:>9}  {:>8} | {:>7.3}  {:>18}  {:>9}  {:>7}  {:>6.0}  {:>6.0}",
            language,
            t.answerable,
            pct(t.answered_with_gold_rate),
            pct(t.answered_without_gold_rate),
            pct(t.abstained_on_answerable_rate),
            t.unanswerable,
            pct(t.abstained_on_unanswerable_rate),
            pct(t.answered_on_unanswerable_rate),
            t.mean_f1_answerable,
            t.citation_precision
                .map_or("-".to_string(), |p| format!("{p:.3}")),
            t.fallbacks,
            t.removed_sentences,
            t.latency_p50_ms,
            t.latency_p95_ms
        );
    }
    let reasons: std::collections::BTreeMap<&str, usize> = report
        .questions
        .iter()
        .filter(|q| q.status == GroundingStatus::Fallback)
        .filter_map(|q| q.reason.as_deref())
        .fold(Default::default(), |mut counts, reason| {
            *counts.entry(reason).or_default() += 1;
            counts
        });
    for (reason, n) in reasons {
        println!("fallback ({n}x): {reason}");
    }
}

fn print_eval(report: &eval::EvalReport) {
    println!(
        "{} documents, {} chunks\nanswerable questions: {}\n  hit@1  {:.3}\n  hit@5  {:.3}\n  hit@10 {:.3}\n  MRR@10 {:.3}\nunanswerable questions: {}\nclosest passage in another language: {} questions\nabstention (similarity < {:.3}, or < {:.3} across languages, or word coverage < {:.2}): {:.1}% of answerable, {:.1}% of unanswerable",
        report.documents,
        report.chunks,
        report.answerable,
        report.hit_at_1,
        report.hit_at_5,
        report.hit_at_10,
        report.mrr_at_10,
        report.unanswerable,
        report.asked_across_languages,
        report.abstain_below,
        report.abstain_below_across_languages,
        report.min_term_coverage,
        report.abstain_rate_answerable * 100.0,
        report.abstain_rate_unanswerable * 100.0
    );
    if let Some(rows) = &report.calibration {
        println!("similarity<  coverage<  abstain(answerable)  abstain(unanswerable)");
        for row in rows {
            println!(
                "{:>11.3}  {:>9.2}  {:>19.3}  {:>21.3}",
                row.abstain_below,
                row.min_term_coverage,
                row.abstain_rate_answerable,
                row.abstain_rate_unanswerable
            );
        }
    }
}

/// `verity eval squad`: retrieval quality over a SQuAD file, in one mode or all.
pub(crate) async fn squad(
    settings: Settings,
    file: PathBuf,
    collection: String,
    calibrate: bool,
    mode: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let modes = match mode.as_deref() {
        Some("all") => RetrievalMode::ALL.to_vec(),
        Some(one) => vec![
            one.parse()
                .map_err(|e: String| anyhow::anyhow!("--mode: {e}, or all"))?,
        ],
        None => vec![settings.query.mode],
    };
    let verity = verity_cli::open(&settings).await?;
    let reports = eval::eval_squad(&verity, &file, &collection, &modes, calibrate).await?;
    if json {
        let output = if mode.as_deref() == Some("all") {
            let by_mode: serde_json::Map<String, serde_json::Value> = reports
                .iter()
                .map(|r| Ok((r.mode.as_str().to_string(), serde_json::to_value(r)?)))
                .collect::<serde_json::Result<_>>()?;
            serde_json::Value::Object(by_mode)
        } else {
            serde_json::to_value(&reports[0])?
        };
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        for report in &reports {
            print_eval(report);
        }
    }
    Ok(())
}

/// `verity eval answers`: end-to-end answer quality with the generator the settings choose.
pub(crate) async fn answers(
    settings: Settings,
    file: PathBuf,
    collection: String,
    sample: Option<usize>,
    seed: u64,
    json: bool,
) -> anyhow::Result<()> {
    let mut settings = settings;
    // A measurement, not use: no answer traces.
    settings.traces.enabled = false;
    let mut verity = verity_cli::open(&settings).await?;
    verity_cli::enable_generation(&mut verity, &settings).await?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} questions {elapsed} (eta {eta})",
            )
            .expect("static template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let options = eval_answers::AnswerEvalOptions {
        collection,
        sample,
        seed,
    };
    let report = eval_answers::eval_answers(&verity, &file, &options, &progress).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_answer_eval(&report);
    }
    Ok(())
}
