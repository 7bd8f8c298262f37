//! The `verity` binary: arguments parsed and dispatched to one module per command
//! (`commands/`); the work itself is in the `verity_cli` library and `verity-service`.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use verity_cli::settings::{Overrides, Settings};
use verity_core::Language;

pub(crate) fn parse_language(code: &str) -> Result<Language, String> {
    Language::from_code(code).ok_or_else(|| format!("unknown language {code:?}: use en, es or pt"))
}

/// Verity: answers from your own documents, every sentence cited, abstaining when the
/// documents do not say.
#[derive(Parser)]
#[command(name = "verity", version, about)]
struct Cli {
    /// Data directory (SQLite database, vector index).
    #[arg(long, global = true, env = "VERITY_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A settings file layered over the built-in defaults (config/default.toml).
    #[arg(long, global = true, env = "VERITY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest files and directories (Markdown, plain text, HTML, PDF, DOCX, CSV/TSV) into a collection.
    Ingest(commands::ingest::IngestArgs),
    /// Ask a question and print the answer with its citations.
    Ask(commands::ask::AskArgs),
    /// Serve the HTTP API.
    Serve(commands::serve::ServeArgs),
    /// Ingest the files of queued jobs (`verity ingest --enqueue`) until the queue is empty.
    Worker {
        /// Keep waiting for new jobs.
        #[arg(long)]
        follow: bool,
        /// The name files are claimed under (default: worker-<pid>).
        #[arg(long)]
        name: Option<String>,
        /// Seconds a claimed file stays this worker's before another may take it.
        #[arg(long, default_value_t = 300)]
        lease_seconds: i64,
        #[arg(long)]
        json: bool,
    },
    /// Create, list and revoke API keys (auth.mode = "keys"). Works while `verity serve` runs.
    Keys {
        #[command(subcommand)]
        which: commands::keys::KeysCommand,
    },
    /// Show how far an ingest job has got.
    Job {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Compare the vector index with the metadata store and repair the difference.
    Reconcile {
        /// Only this collection (default: every collection).
        #[arg(long)]
        collection: Option<String>,
        /// Report only; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Measure retrieval, abstention and answers.
    Eval {
        #[command(subcommand)]
        which: commands::eval::EvalCommand,
    },
    /// Benchmarks (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        which: commands::bench::BenchCommand,
    },
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => exit_with(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    if let Err(err) = runtime.block_on(run(cli)) {
        exit_with(err);
    }
}

fn exit_with(err: anyhow::Error) -> ! {
    eprintln!("error: {err:#}");
    std::process::exit(1);
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VERITY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,qdrant_edge=error,verity=info")
    });
    // VERITY_LOG_FORMAT=json: one JSON object per line (for ELK and the like), with the
    // request's span (its request id) on every line logged while serving it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("VERITY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
async fn run(cli: Cli) -> anyhow::Result<()> {
    let bind = match &cli.command {
        Command::Serve(args) => args.bind.clone(),
        _ => None,
    };
    let settings = Settings::load(
        cli.config.as_deref(),
        &Overrides {
            data_dir: cli.data_dir.clone(),
            bind,
        },
    )?;
    match cli.command {
        Command::Ingest(args) => commands::ingest::ingest(settings, args).await,
        Command::Ask(args) => commands::ask::ask(settings, args).await,
        Command::Serve(args) => commands::serve::serve(settings, args).await,
        Command::Eval {
            which:
                commands::eval::EvalCommand::Squad {
                    file,
                    collection,
                    calibrate,
                    mode,
                    json,
                },
        } => commands::eval::squad(settings, file, collection, calibrate, mode, json).await,
        Command::Eval {
            which:
                commands::eval::EvalCommand::Answers {
                    file,
                    collection,
                    sample,
                    seed,
                    json,
                },
        } => commands::eval::answers(settings, file, collection, sample, seed, json).await,
        Command::Bench { which } => commands::bench::run_bench(settings, which).await,
        Command::Worker {
            follow,
            name,
            lease_seconds,
            json,
        } => commands::queue::worker(settings, follow, name, lease_seconds, json).await,
        Command::Keys { which } => commands::keys::keys(settings, which).await,
        Command::Job { id, json } => commands::queue::job(settings, id, json).await,
        Command::Reconcile {
            collection,
            dry_run,
            json,
        } => commands::queue::reconcile(settings, collection, dry_run, json).await,
    }
}
