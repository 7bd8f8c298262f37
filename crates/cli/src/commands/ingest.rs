//! `verity ingest`: files and directories into a collection, now or as a queued job.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use verity_cli::settings::Settings;
use verity_core::{Caller, Language};
use verity_service::pipeline::{FileOutcome, IngestOptions, IngestProgress, IngestReport, Quiet};

use crate::parse_language;

#[derive(Args)]
pub(crate) struct IngestArgs {
    /// Files or directories to ingest.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Collection to ingest into (default: query.default_collection).
    #[arg(long)]
    collection: Option<String>,
    /// Remove documents of the collection whose files no longer exist.
    #[arg(long)]
    prune: bool,
    /// Tags for every document of this run, comma-separated (filterable with "filter": {"tags"}).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Access groups that may read every document of this run, comma-separated; callers see
    /// a document only if they belong to one of its groups. None: anyone who may read the
    /// collection.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The documents' language (en, es, pt) for BM25 stop words and stemming; detected per
    /// document when not given.
    #[arg(long, value_parser = parse_language)]
    language: Option<Language>,
    /// Print one JSON object with the counts instead of text.
    #[arg(long)]
    json: bool,
    /// Record a job for `verity worker` processes instead of ingesting now.
    #[arg(long, conflicts_with = "prune")]
    enqueue: bool,
}

/// A progress bar on a terminal; nothing otherwise.
struct Bar(ProgressBar);

#[async_trait::async_trait]
impl IngestProgress for Bar {
    async fn total(&self, files: usize) {
        self.0.set_length(files as u64);
    }
    async fn done(&self, source: &str, outcome: FileOutcome) {
        if outcome == FileOutcome::Failed {
            self.0.println(format!("skipped {source}"));
        }
        if outcome != FileOutcome::Removed {
            self.0.inc(1);
        }
    }
}

pub(crate) async fn ingest(settings: Settings, args: IngestArgs) -> anyhow::Result<()> {
    let collection = args
        .collection
        .unwrap_or_else(|| settings.query.default_collection.clone());
    let options = IngestOptions::new(collection.clone())
        .with_prune(args.prune)
        .with_tags(args.tags)
        .with_groups(args.groups)
        .with_language(args.language);
    let verity = verity_cli::open(&settings).await?;
    if args.enqueue {
        let (job, files) = verity
            .enqueue(&Caller::local(), &args.paths, &options)
            .await?;
        if args.json {
            println!("{}", serde_json::json!({"job_id": job, "files": files}));
        } else {
            println!("job {job}: {files} files queued for `verity worker`");
        }
        return Ok(());
    }
    let started = std::time::Instant::now();
    // The batch is recorded as a job with a state per file (`verity job ID`).
    let (job, report) = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} files {elapsed}")
                .expect("static template"),
        );
        let report = verity
            .ingest_as_job(&Caller::local(), &args.paths, &options, &Bar(bar.clone()))
            .await;
        bar.finish_and_clear();
        report?
    } else {
        verity
            .ingest_as_job(&Caller::local(), &args.paths, &options, &Quiet)
            .await?
    };
    if args.json {
        let mut output = serde_json::to_value(&report)?;
        output["job"] = serde_json::json!(job);
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print_ingest(&report, &collection, started.elapsed());
        println!("job {job} (`verity job {job}` shows each file's state)");
    }
    Ok(())
}

fn print_ingest(report: &IngestReport, collection: &str, elapsed: std::time::Duration) {
    println!(
        "collection {collection}: {} added, {} updated, {} unchanged, {} removed, {} failed; {} chunks embedded in {:.1}s",
        report.documents_added,
        report.documents_updated,
        report.documents_unchanged,
        report.documents_removed,
        report.documents_failed,
        report.chunks_embedded,
        elapsed.as_secs_f64()
    );
    for failure in &report.failures {
        println!("  failed: {}: {}", failure.source, failure.reason);
    }
}
