//! `verity bench`: the benchmarks of docs/benchmarks.md.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use verity_cli::build_server;
use verity_cli::settings::Settings;
use verity_core::RetrievalMode;
use verity_eval::bench::{self, bench_query};
use verity_eval::generate as bench_generate;
use verity_eval::load as bench_load;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
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

pub(crate) async fn run_bench(settings: Settings, which: BenchCommand) -> anyhow::Result<()> {
    match which {
        BenchCommand::Corpus {
            out,
            files,
            sources,
            squad,
        } => {
            let summary =
                verity_eval::corpus::write_corpus(&out, files, &sources, squad.as_deref())?;
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
            let scratch = tempfile::tempdir().context("cannot create a scratch data directory")?;
            let mut settings = settings;
            // The model is found relative to the real data directory; pin it before switching.
            if settings.embed.model_dir.is_none() {
                settings.embed.model_dir = Some(settings.find_model_dir()?);
            }
            settings.data_dir = scratch.path().to_path_buf();
            let verity = verity_cli::open(&settings).await?;
            let result = bench::bench_ingest(&verity, &paths, repeats.max(1)).await?;
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
                    "loaded in {:.1} s (activations {:?}); first request, nothing cached: {} prompt tokens (the engine's count), first token {:.1} ms (prefill {:.1} tokens/s), decode {:.1} tokens/s",
                    r.load_seconds,
                    r.dtype,
                    r.engine_prompt_tokens,
                    r.cold_first_token_ms,
                    r.cold_prefill_tokens_per_s,
                    r.cold_decode_tokens_per_s
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
            let result = bench_auth(settings, requests, rounds.max(1)).await?;
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
            let rows = bench_query(
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

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuthBench {
    pub requests: usize,
    /// Client-side p50 per round, authentication off.
    pub off_p50_ms: Vec<f64>,
    /// Client-side p50 per round, with an API key: key lookup in the store, the access-group
    /// condition in the Qdrant query, the rate limiter.
    pub keys_p50_ms: Vec<f64>,
    pub median_difference_ms: f64,
}

/// Two servers on one Verity — authentication off, and API keys — measured in alternating
/// rounds, so both see the same machine conditions.
async fn bench_auth(
    settings: Settings,
    requests: usize,
    rounds: usize,
) -> anyhow::Result<AuthBench> {
    use verity_auth::{AuthMode, BearerAuthenticator, create_key};
    use verity_core::Scope;
    use verity_gateway::{Application, RateLimit};

    let verity = Arc::new(verity_cli::open(&settings).await?);
    let key = create_key(
        verity.store(),
        "bench auth (temporary)",
        &[Scope::Query],
        None,
        &["bench".to_string()],
    )
    .await?;
    let mut urls = Vec::new();
    let mut handles = Vec::new();
    for mode in [AuthMode::Off, AuthMode::Keys] {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut config = verity_cli::gateway_config(&settings);
        // Limits far above the benchmark's pace: the limiter's cost is measured, not its
        // refusals.
        config.rate_limit = Some(RateLimit {
            per_minute: 1_000_000_000,
            burst: 1_000_000,
        });
        let authenticator = Arc::new(BearerAuthenticator::new(
            verity.store().clone(),
            mode,
            None,
        )?);
        let app = Application::build(
            listener,
            verity_cli::services(verity.clone(), authenticator),
            config,
        )?;
        urls.push(format!("http://127.0.0.1:{}", app.port()));
        handles.push(app.handle());
        tokio::spawn(app.run_until_stopped());
    }
    let mut off = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..rounds {
        for (url, bearer, out) in [
            (&urls[0], None, &mut off),
            (&urls[1], Some(key.key.as_str()), &mut keys),
        ] {
            let rows =
                bench_query(url, None, &[RetrievalMode::Hybrid], &[1], requests, bearer).await?;
            anyhow::ensure!(rows[0].errors == 0, "{} requests failed", rows[0].errors);
            out.push(rows[0].p50_ms);
        }
    }
    for handle in handles {
        handle.stop(true).await;
    }
    verity.store().revoke_api_key(&key.id).await?;
    let mut differences: Vec<f64> = keys.iter().zip(&off).map(|(k, o)| k - o).collect();
    differences.sort_by(f64::total_cmp);
    Ok(AuthBench {
        requests,
        median_difference_ms: differences[differences.len() / 2],
        off_p50_ms: off,
        keys_p50_ms: keys,
    })
}
