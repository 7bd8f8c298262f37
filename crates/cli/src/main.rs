use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use verity_auth::AuthMode;
use verity_cli::settings::{Overrides, Settings};
use verity_cli::{bench, bench_generate, bench_load, build_server, eval, eval_answers};
use verity_core::{
    AnswerEvent, AnswerService, Caller, GroundingStatus, Language, QueryRequest, RetrievalMode,
    Scope,
};
use verity_service::pipeline::{FileOutcome, IngestOptions, IngestProgress, IngestReport, Quiet};
use verity_store::Store;

fn parse_language(code: &str) -> Result<Language, String> {
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
    Ingest(IngestArgs),
    /// Ask a question and print the answer with its citations.
    Ask(AskArgs),
    /// Serve the HTTP API.
    Serve(ServeArgs),
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
        which: KeysCommand,
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
        which: EvalCommand,
    },
    /// Benchmarks (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Args)]
struct IngestArgs {
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

#[derive(Args)]
struct AskArgs {
    question: String,
    #[arg(long)]
    collection: Option<String>,
    /// Passages to retrieve and list.
    #[arg(long)]
    top_k: Option<u32>,
    /// dense, sparse or hybrid (default: query.mode).
    #[arg(long)]
    mode: Option<RetrievalMode>,
    /// Print the answer object as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default: server.bind, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<String>,
    /// Serve HTTPS (TLS 1.3) with this PEM certificate chain (default: server.tls_cert).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (default: server.tls_key).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EvalCommand {
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

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        /// Who or what uses the key.
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: query, ingest, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,
        /// The collections it may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        collections: Option<Vec<String>>,
        /// Its access groups: it reads documents of these groups and documents without groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Print {"id", "key"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves), with their last use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; the next request with it is refused.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// A corpus of mixed formats (Markdown, HTML, text in UTF-8 and Windows-1252, PDF, DOCX,
    /// CSV) for `bench ingest`, cut from the paragraphs of real documents.
    Corpus {
        /// A new (or empty) directory to write the files into.
        out: PathBuf,
        #[arg(long, default_value_t = 2000)]
        files: usize,
        /// Documents whose paragraphs the files are cut from (any format Verity reads).
        #[arg(long = "from")]
        sources: Vec<PathBuf>,
        /// A SQuAD JSON file whose articles' paragraphs are used too.
        #[arg(long)]
        squad: Option<PathBuf>,
    },
    /// Ingest throughput next to raw embedding throughput, in a scratch data directory.
    Ingest {
        paths: Vec<PathBuf>,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long)]
        json: bool,
    },
    /// /v1/query latency over HTTP. Without --url, serves the data directory in-process on a
    /// free loopback port.
    Query {
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        collection: Option<String>,
        /// Retrieval modes to compare, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![RetrievalMode::Dense, RetrievalMode::Sparse, RetrievalMode::Hybrid])]
        modes: Vec<RetrievalMode>,
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 8])]
        concurrency: Vec<usize>,
        #[arg(long, default_value_t = 400)]
        requests: usize,
        #[arg(long)]
        json: bool,
    },
    /// Language-model speed through mistral.rs: time to first token, decode tokens/s, the
    /// memory bandwidth that implies, and Verity's overhead around the engine.
    Generate {
        /// A local model directory (safetensors or GGUF).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Write a random Llama first: `tiny` (2 layers, 64 wide) or `small` (~0.4 B
        /// parameters), into --model if given, else a temporary directory.
        #[arg(long, value_parser = ["tiny", "small"])]
        random_model: Option<String>,
        /// Tokens of sources in the prompt (the rules and the question come on top).
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Generations in all (run `concurrency` at a time).
        #[arg(long, default_value_t = 8)]
        requests: usize,
        /// In-situ quantisation: none, q8 or q4.
        #[arg(long, default_value = "none", value_parser = ["none", "q8", "q4"])]
        quantization: String,
        /// Run on the CPU even in a CUDA build.
        #[arg(long)]
        cpu: bool,
        /// Activation type: auto (f32 on CPU), f32, bf16 or f16.
        #[arg(long, default_value = "auto", value_parser = ["auto", "f32", "bf16", "f16"])]
        dtype: String,
        /// Rounds of the engine-alone versus pipeline comparison (0 skips it).
        #[arg(long, default_value_t = 7)]
        overhead_rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// /v1/query latency with authentication off and with an API key (plus its access-group
    /// filter and rate limiting), side by side on one data directory, rounds alternating.
    Auth {
        #[arg(long, default_value_t = 300)]
        requests: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Four times the load the server sustains: the sustainable rate with closed-loop
    /// clients, then open-loop arrivals at --factor times it; answered and refused latencies
    /// and resident memory. Serves the data directory in-process.
    Load {
        /// Closed-loop clients that measure the sustainable rate (default: as many as the
        /// server admits at once, server.max_concurrent_queries).
        #[arg(long)]
        clients: Option<usize>,
        #[arg(long, default_value_t = 600)]
        requests: usize,
        #[arg(long, default_value_t = 4.0)]
        factor: f64,
        /// How long the overload lasts.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long)]
        json: bool,
    },
    /// Prompt building and verification of a 300-word answer against 5 sources (no model).
    Verify {
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        #[arg(long)]
        json: bool,
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
        Command::Ingest(args) => ingest(settings, args).await,
        Command::Ask(args) => ask(settings, args).await,
        Command::Serve(args) => {
            let mut settings = settings;
            if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
                settings.server.tls_cert = Some(cert);
                settings.server.tls_key = Some(key);
            }
            serve(settings).await
        }
        Command::Eval {
            which:
                EvalCommand::Squad {
                    file,
                    collection,
                    calibrate,
                    mode,
                    json,
                },
        } => {
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
        Command::Eval {
            which:
                EvalCommand::Answers {
                    file,
                    collection,
                    sample,
                    seed,
                    json,
                },
        } => {
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
        Command::Bench { which } => run_bench(settings, which).await,
        Command::Worker {
            follow,
            name,
            lease_seconds,
            json,
        } => {
            let verity = verity_cli::open(&settings).await?;
            let mut options = verity_service::worker::WorkerOptions {
                follow,
                lease_seconds,
                ..Default::default()
            };
            if let Some(name) = name {
                options.name = name;
            }
            let report = verity.run_worker(&options).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} files ingested, {} failed",
                    report.worker, report.files_done, report.files_failed
                );
            }
            Ok(())
        }
        Command::Keys { which } => keys(settings, which).await,
        Command::Job { id, json } => {
            let verity = verity_cli::open(&settings).await?;
            let progress = verity.store().job_progress(id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&progress)?);
            } else {
                println!(
                    "job {id}: {} queued, {} running, {} done, {} failed, {} cancelled",
                    progress.queued,
                    progress.running,
                    progress.done,
                    progress.failed,
                    progress.cancelled
                );
            }
            Ok(())
        }
        Command::Reconcile {
            collection,
            dry_run,
            json,
        } => {
            let verity = verity_cli::open(&settings).await?;
            let report = verity.reconcile(collection.as_deref(), !dry_run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} chunks missing from the index, {} orphans in it; {} repaired; {} documents left half-written (run `verity ingest` on their files)",
                    report.missing_in_index,
                    report.orphans_in_index,
                    report.repaired,
                    report.documents_incomplete
                );
            }
            Ok(())
        }
    }
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

async fn ingest(settings: Settings, args: IngestArgs) -> anyhow::Result<()> {
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
        let (job, files) = verity.enqueue(&args.paths, &options).await?;
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
            .ingest_as_job(&args.paths, &options, &Bar(bar.clone()))
            .await;
        bar.finish_and_clear();
        report?
    } else {
        verity.ingest_as_job(&args.paths, &options, &Quiet).await?
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

async fn ask(settings: Settings, args: AskArgs) -> anyhow::Result<()> {
    let mut verity = verity_cli::open(&settings).await?;
    verity_cli::enable_generation(&mut verity, &settings).await?;
    let request = QueryRequest {
        question: args.question,
        collection: args.collection,
        top_k: args.top_k,
        mode: args.mode,
        filter: None,
        stream: !args.json,
    };
    if args.json {
        let (answer, _) = verity.query(&Caller::local(), request).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    // Text as it is generated, then the verified answer if verification changed it.
    let mut events = verity.query_stream(&Caller::local(), request).await?;
    let mut streamed = String::new();
    let mut answer = None;
    while let Some(event) = events.recv().await {
        match event {
            AnswerEvent::Delta(text) => {
                print!("{text}");
                std::io::Write::flush(&mut std::io::stdout())?;
                streamed.push_str(&text);
            }
            AnswerEvent::Grounding(a) => answer = Some(a),
            AnswerEvent::Error(message) => anyhow::bail!("answering failed: {message}"),
            AnswerEvent::Sources(_) | AnswerEvent::Done(_) => {}
        }
    }
    let answer = answer.context("the answer ended without its verification")?;
    println!();
    if streamed.trim() != answer.answer.trim() {
        println!("\nVerified answer:\n{}", answer.answer);
    }
    println!(
        "\nGrounding: {}{}",
        answer.grounding.status.as_str(),
        answer
            .grounding
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    for removed in &answer.grounding.unsupported {
        println!("  removed: {:?}: {}", removed.sentence, removed.reason);
    }
    for set in &answer.grounding.attributed {
        let cited = |markers: &[u32]| -> String {
            if markers.is_empty() {
                "nothing".to_string()
            } else {
                markers.iter().map(|n| format!("[{n}]")).collect()
            }
        };
        println!(
            "  {}: {:?}: the model cited {}, the sources say {}",
            set.action.as_str(),
            set.sentence,
            cited(&set.model_citations),
            cited(&set.citations)
        );
    }
    let heading = match answer.grounding.status {
        GroundingStatus::Abstained => "Nearest passages (none supports an answer):",
        _ => "Sources:",
    };
    println!("\n{heading}");
    for c in &answer.citations {
        let excerpt: String = c
            .text
            .chars()
            .take(160)
            .collect::<String>()
            .replace('\n', " ");
        println!(
            "[{}] {} ({}, chars {}-{}, similarity {:.2})\n    {excerpt}…",
            c.id, c.title, c.source, c.start, c.end, c.similarity
        );
    }
    Ok(())
}

async fn keys(settings: Settings, which: KeysCommand) -> anyhow::Result<()> {
    // Only the store: no data-directory lock, so keys can be managed while a server runs.
    let store = match &settings.database.url {
        Some(url) => Store::connect(url).await?,
        None => {
            std::fs::create_dir_all(&settings.data_dir)?;
            Store::open_sqlite(&settings.database_path()).await?
        }
    };
    match which {
        KeysCommand::Create {
            name,
            scopes,
            collections,
            groups,
            json,
        } => {
            let created =
                verity_auth::create_key(&store, &name, &scopes, collections.as_deref(), &groups)
                    .await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!(
                    "created key {} ({name}). It is shown only now; store it safely:\n{}",
                    created.id, created.key
                );
            }
        }
        KeysCommand::List { json } => {
            let keys = store.list_api_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "id            name                  scopes              collections   groups        last used   revoked"
                );
                for k in keys {
                    println!(
                        "{:<13} {:<21} {:<19} {:<13} {:<13} {:<11} {}",
                        k.id,
                        k.name,
                        k.scopes.join(","),
                        k.collections.map_or("all".to_string(), |c| c.join(",")),
                        k.groups.join(","),
                        k.last_used_at
                            .map_or("never".to_string(), |t| t.to_string()),
                        k.revoked_at
                            .map_or("no".to_string(), |t| format!("yes ({t})"))
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            store.revoke_api_key(&id).await?;
            println!("revoked key {id}: requests with it are refused from now on");
        }
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.server.bind.clone();
    let auth = settings.auth.mode;
    let tls = settings.server.tls_cert.is_some();
    if auth == AuthMode::Off {
        let addresses: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&bind)
            .with_context(|| format!("cannot resolve the bind address {bind}"))?
            .collect();
        anyhow::ensure!(
            !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()),
            "refusing to serve on {bind} with authentication off (auth.mode = \"off\"): anyone \
             who can reach it could read every document. Set VERITY_AUTH_MODE=keys and create \
             keys with `verity keys create`, or bind to 127.0.0.1"
        );
        eprintln!(
            "authentication is off (auth.mode = \"off\"): serving on loopback only, every request acts as the operator"
        );
    }
    let mut verity = verity_cli::open(&settings).await?;
    verity_cli::enable_generation(&mut verity, &settings).await?;
    let verity = Arc::new(verity);
    if settings.ingest.serve_worker {
        // Jobs of POST /v1/ingest/jobs (and `verity ingest --enqueue`) are ingested here; a
        // job a killed server left behind resumes now.
        verity_service::worker::start_serve_worker(Arc::clone(&verity)).await?;
    }
    let listener = TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let scheme = if tls { "https" } else { "http" };
    let app = build_server(&settings, verity, listener).await?;
    eprintln!(
        "verity listening on {scheme}://{address} (POST /v1/query, GET /healthz, GET /readyz, GET /metrics); authentication: {}",
        auth.as_str()
    );
    app.run_until_stopped().await.context("HTTP server failed")
}

async fn run_bench(settings: Settings, which: BenchCommand) -> anyhow::Result<()> {
    match which {
        BenchCommand::Corpus {
            out,
            files,
            sources,
            squad,
        } => {
            let summary =
                verity_cli::bench_corpus::write_corpus(&out, files, &sources, squad.as_deref())?;
            println!(
                "{} files ({:.1} MiB) cut from {} paragraphs into {}: {}",
                summary.files,
                summary.bytes as f64 / 1_048_576.0,
                summary.paragraphs,
                out.display(),
                summary
                    .by_format
                    .iter()
                    .map(|(format, n)| format!("{n} {format}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        BenchCommand::Ingest {
            paths,
            repeats,
            json,
        } => {
            anyhow::ensure!(!paths.is_empty(), "give the files or directories to ingest");
            let result = bench::bench_ingest(&settings, &paths, repeats.max(1)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                println!(
                    "{} files, {} chunks, {} tokens (median of {})\n  parse+chunk   {:>8.3}s\n  raw embedding {:>8.3}s  {:>8.1} chunks/s  {:>9.0} tokens/s\n  pipeline      {:>8.3}s  {:>8.1} chunks/s  {:>9.0} tokens/s  {:>7.1} files/s\n  overhead over raw embedding: {:.1}%\n  re-run, nothing changed: {:.3}s ({:.1}% of the pipeline)\n  peak resident memory: {:.0} MiB during the pipeline, {:.0} MiB with raw embedding",
                    result.files,
                    result.chunks,
                    result.tokens,
                    result.repeats,
                    result.parse_and_chunk_seconds,
                    result.raw_embedding.seconds,
                    result.raw_embedding.chunks_per_s,
                    result.raw_embedding.tokens_per_s,
                    result.pipeline.seconds,
                    result.pipeline.chunks_per_s,
                    result.pipeline.tokens_per_s,
                    result.pipeline_files_per_s,
                    result.overhead_percent,
                    result.rerun_seconds,
                    result.rerun_percent,
                    result.pipeline_peak_rss_mib,
                    result.peak_rss_mib
                );
            }
        }
        BenchCommand::Generate {
            model,
            random_model,
            prompt_tokens,
            max_tokens,
            concurrency,
            requests,
            quantization,
            cpu,
            dtype,
            overhead_rounds,
            json,
        } => {
            let options = bench_generate::GenerateBenchOptions {
                model_dir: model,
                random: random_model.map(|r| {
                    if r == "small" {
                        verity_mistralrs::LlamaShape::SMALL
                    } else {
                        verity_mistralrs::LlamaShape::TINY
                    }
                }),
                prompt_tokens,
                max_tokens,
                concurrency,
                requests,
                quantization: match quantization.as_str() {
                    "q8" => verity_mistralrs::Quantization::Q8,
                    "q4" => verity_mistralrs::Quantization::Q4,
                    _ => verity_mistralrs::Quantization::None,
                },
                force_cpu: cpu,
                dtype: match dtype.as_str() {
                    "f32" => verity_mistralrs::ActivationDtype::F32,
                    "bf16" => verity_mistralrs::ActivationDtype::Bf16,
                    "f16" => verity_mistralrs::ActivationDtype::F16,
                    _ => verity_mistralrs::ActivationDtype::Auto,
                },
                overhead_rounds,
            };
            let r = bench_generate::bench_generate(&options).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "loaded in {:.1} s (activations {:?}); first request, nothing cached: first token {:.1} ms, decode {:.1} tokens/s",
                    r.load_seconds, r.dtype, r.cold_first_token_ms, r.cold_decode_tokens_per_s
                );
                println!(
                    "{} ({:.1} MB of weights), prompt {} tokens, up to {} new tokens, concurrency {}, {} requests\n  time to first token  p50 {:>8.1} ms   p95 {:>8.1} ms\n  decode per stream    p50 {:>8.1} tokens/s\n  all streams          {:>8.1} tokens/s\n  implied bandwidth    {:>8.2} GB/s (weights read once per decoded token)\n  engine alone {:.1} ms, through Verity's pipeline {:.1} ms; time outside the engine {:.2} ms per request",
                    r.model,
                    r.weights_bytes as f64 / 1e6,
                    r.prompt_tokens,
                    r.max_tokens,
                    r.concurrency,
                    r.requests,
                    r.first_token_p50_ms,
                    r.first_token_p95_ms,
                    r.decode_tokens_per_s_p50,
                    r.aggregate_tokens_per_s,
                    r.implied_bandwidth_gb_per_s,
                    r.engine_only_ms_p50,
                    r.pipeline_ms_p50,
                    r.pipeline_overhead_ms
                );
            }
        }
        BenchCommand::Auth {
            requests,
            rounds,
            json,
        } => {
            let result = bench::bench_auth(settings, requests, rounds.max(1)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                println!("round  auth off p50 ms  API key p50 ms  difference ms");
                for (i, (off, key)) in result
                    .off_p50_ms
                    .iter()
                    .zip(&result.keys_p50_ms)
                    .enumerate()
                {
                    println!(
                        "{:>5}  {:>15.3}  {:>14.3}  {:>13.3}",
                        i + 1,
                        off,
                        key,
                        key - off
                    );
                }
                println!(
                    "median difference: {:.3} ms per request (hybrid, concurrency 1, {} requests per round and setting)",
                    result.median_difference_ms, result.requests
                );
            }
        }
        BenchCommand::Load {
            clients,
            requests,
            factor,
            seconds,
            json,
        } => {
            let mut settings = settings;
            // Capacity, not a caller's quota, is measured: no per-caller rate limit.
            settings.auth.rate_limit_per_minute = 0;
            let verity = Arc::new(verity_cli::open(&settings).await?);
            let limit = settings.server.max_concurrent_queries;
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let app = build_server(&settings, verity, listener).await?;
            let url = format!("http://127.0.0.1:{}", app.port());
            let handle = app.handle();
            tokio::spawn(app.run_until_stopped());
            let clients = clients.unwrap_or(if limit > 0 { limit } else { 8 });
            let r = bench_load::bench_load(&url, clients, requests, factor, seconds).await?;
            handle.stop(true).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "capacity ({} closed-loop clients): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms\n\
                     overload: {:.0} req/s offered for {:.1} s (server.max_concurrent_queries = {limit}), {} sent, {} skipped\n  \
                     answered {:>6}  p50 {:>7.2} ms  p99 {:>7.2} ms\n  \
                     refused  {:>6}  p50 {:>7.2} ms  p99 {:>7.2} ms\n  \
                     failed   {:>6}\n\
                     resident memory: {:.0} MiB before, {:.0} MiB peak, {:.0} MiB after",
                    r.capacity_clients,
                    r.capacity_rps,
                    r.capacity_p50_ms,
                    r.capacity_p99_ms,
                    r.offered_rps,
                    r.seconds,
                    r.sent,
                    r.skipped,
                    r.answered,
                    r.answered_p50_ms,
                    r.answered_p99_ms,
                    r.refused,
                    r.refused_p50_ms,
                    r.refused_p99_ms,
                    r.failed,
                    r.rss_before_mib,
                    r.rss_peak_mib,
                    r.rss_after_mib
                );
            }
        }
        BenchCommand::Verify { iterations, json } => {
            let r = bench_generate::bench_verify(iterations.max(1));
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{}-word answer, {} sources, {} iterations\n  prompt building p50 {:.1} µs\n  sanitize + verify p50 {:.1} µs, p99 {:.1} µs",
                    r.answer_words,
                    r.sources,
                    r.iterations,
                    r.prompt_build_us_p50,
                    r.verify_us_p50,
                    r.verify_us_p99
                );
            }
        }
        BenchCommand::Query {
            url,
            collection,
            modes,
            concurrency,
            requests,
            json,
        } => {
            let mut server = None;
            let base_url = match url {
                Some(url) => url,
                None => {
                    let mut settings = settings;
                    // Latency, not a caller's quota, is measured: no per-caller rate limit.
                    settings.auth.rate_limit_per_minute = 0;
                    let verity = Arc::new(verity_cli::open(&settings).await?);
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    let app = build_server(&settings, verity, listener).await?;
                    let url = format!("http://127.0.0.1:{}", app.port());
                    let handle = app.handle();
                    tokio::spawn(app.run_until_stopped());
                    server = Some(handle);
                    url
                }
            };
            let rows = bench::bench_query(
                &base_url,
                collection.as_deref(),
                &modes,
                &concurrency,
                requests,
                None,
            )
            .await?;
            if let Some(handle) = server {
                handle.stop(true).await;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "mode    concurrency  requests  errors  p50 ms  p99 ms  max ms  req/s  | server p50: embed  search  other | server p99 total"
                );
                for r in rows {
                    println!(
                        "{:<6}  {:>11}  {:>8}  {:>6}  {:>6.2}  {:>6.2}  {:>6.2}  {:>5.0}  |             {:>5.2}  {:>6.2}  {:>5.2} | {:>6.2}",
                        r.mode.as_str(),
                        r.concurrency,
                        r.requests,
                        r.errors,
                        r.p50_ms,
                        r.p99_ms,
                        r.max_ms,
                        r.requests_per_s,
                        r.server_embed_p50_ms,
                        r.server_search_p50_ms,
                        r.server_other_p50_ms,
                        r.server_total_p99_ms
                    );
                }
            }
        }
    }
    Ok(())
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
        "{} documents, {} chunks\nanswerable questions: {}\n  hit@1  {:.3}\n  hit@5  {:.3}\n  hit@10 {:.3}\n  MRR@10 {:.3}\nunanswerable questions: {}\nabstention (similarity < {:.3} or word coverage < {:.2}): {:.1}% of answerable, {:.1}% of unanswerable",
        report.documents,
        report.chunks,
        report.answerable,
        report.hit_at_1,
        report.hit_at_5,
        report.hit_at_10,
        report.mrr_at_10,
        report.unanswerable,
        report.abstain_below,
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
