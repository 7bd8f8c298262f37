//! `verity bench`: ingest throughput next to raw embedding throughput, and `/v1/query` latency
//! over HTTP. Figures and commands are recorded in docs/benchmarks.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use verity_core::{Caller, RetrievalMode};
use verity_ingest::{collect_files, embedding_text, parse_file};

use verity_service::Verity;
use verity_service::pipeline::{IngestInput, IngestOptions, Quiet};

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub seconds: f64,
    pub chunks_per_s: f64,
    pub tokens_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestBench {
    pub files: usize,
    pub chunks: usize,
    pub tokens: usize,
    pub repeats: usize,
    /// Reading, parsing and chunking alone (median).
    pub parse_and_chunk_seconds: f64,
    /// `Embedder::embed_passages` on the same chunk texts, in one call (median).
    pub raw_embedding: Throughput,
    /// The whole `verity ingest` pipeline into a fresh collection (median).
    pub pipeline: Throughput,
    /// (pipeline time − raw embedding time) / raw embedding time, in percent.
    pub overhead_percent: f64,
    pub pipeline_files_per_s: f64,
    /// The same files ingested again into the last round's collection: nothing changed, so
    /// nothing is parsed or embedded.
    pub rerun_seconds: f64,
    /// `rerun_seconds` as a share of the pipeline's median, in percent.
    pub rerun_percent: f64,
    /// The process's peak resident memory (VmHWM) while the first pipeline round ran, in MiB
    /// (0 where the kernel cannot reset the peak).
    pub pipeline_peak_rss_mib: f64,
    /// The process's peak resident memory over the whole benchmark, raw embedding included
    /// (which holds every text and vector at once).
    pub peak_rss_mib: f64,
}

/// Resets this process's peak resident memory (Linux: `5` to `/proc/self/clear_refs`);
/// whether it could.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident memory of this process so far, in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    memory_mib("VmHWM")
}

/// A memory figure of this process's `/proc/self/status` (`VmRSS`, `VmHWM`, …), in MiB; 0 where
/// it cannot be read.
pub(crate) fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix(field)?.strip_prefix(':')?;
                kb.trim().strip_suffix("kB")?.trim().parse::<f64>().ok()
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn throughput(seconds: f64, chunks: usize, tokens: usize) -> Throughput {
    Throughput {
        seconds,
        chunks_per_s: chunks as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
    }
}

/// Runs raw embedding and the full pipeline alternately `repeats` times in one process, so
/// both see the same machine load. `verity` should be a throw-away one (a scratch data
/// directory): every round ingests `paths` into a collection of its own.
pub async fn bench_ingest(
    verity: &Verity,
    paths: &[PathBuf],
    repeats: usize,
) -> anyhow::Result<IngestBench> {
    let (files, _) = collect_files(paths);
    let mut texts = Vec::new();
    let mut parse_times = Vec::new();
    for round in 0..repeats {
        let started = Instant::now();
        let mut round_texts = Vec::new();
        for file in &files {
            if let Ok((document, _)) = parse_file(&file.path) {
                for chunk in verity.chunker().chunk("bench", &document) {
                    round_texts.push(embedding_text(&document.title, &chunk));
                }
            }
        }
        parse_times.push(started.elapsed().as_secs_f64());
        if round == 0 {
            texts = round_texts;
        }
    }
    anyhow::ensure!(
        !texts.is_empty(),
        "no ingestible files under the given paths"
    );
    let tokens: usize = texts
        .iter()
        .map(|t| verity.chunker().count_tokens(t) + 2)
        .sum();

    let mut raw_times = Vec::new();
    let mut pipeline_times = Vec::new();
    let mut pipeline_peak_rss_mib = 0.0;
    for round in 0..repeats {
        // The pipeline first: in the first round its peak memory is measured before the raw
        // embedding (which holds every text and vector at once) has ever run.
        let measure = round == 0 && reset_peak_rss();
        let started = Instant::now();
        let report = verity
            .ingest(
                &Caller::local(),
                IngestInput::Paths(paths.to_vec()),
                &IngestOptions::new(format!("bench-{round}")),
                &Quiet,
            )
            .await?;
        pipeline_times.push(started.elapsed().as_secs_f64());
        if measure {
            pipeline_peak_rss_mib = peak_rss_mib();
        }

        let started = Instant::now();
        verity.embedder().embed_passages(&texts)?;
        raw_times.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            report.chunks_embedded == texts.len(),
            "pipeline embedded {} chunks, expected {}",
            report.chunks_embedded,
            texts.len()
        );
    }
    let started = Instant::now();
    let rerun = verity
        .ingest(
            &Caller::local(),
            IngestInput::Paths(paths.to_vec()),
            &IngestOptions::new(format!("bench-{}", repeats - 1)),
            &Quiet,
        )
        .await?;
    let rerun_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        rerun.chunks_embedded == 0,
        "the re-run embedded {} chunks; it should find every file unchanged",
        rerun.chunks_embedded
    );
    let raw = median(raw_times);
    let pipeline = median(pipeline_times);
    Ok(IngestBench {
        files: files.len(),
        chunks: texts.len(),
        tokens,
        repeats,
        parse_and_chunk_seconds: median(parse_times),
        raw_embedding: throughput(raw, texts.len(), tokens),
        pipeline: throughput(pipeline, texts.len(), tokens),
        overhead_percent: (pipeline - raw) / raw * 100.0,
        pipeline_files_per_s: files.len() as f64 / pipeline,
        rerun_seconds,
        rerun_percent: rerun_seconds / pipeline * 100.0,
        pipeline_peak_rss_mib,
        peak_rss_mib: peak_rss_mib(),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryBench {
    pub mode: RetrievalMode,
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub requests_per_s: f64,
    /// Server-side split, medians from the `Server-Timing` header.
    pub server_embed_p50_ms: f64,
    pub server_search_p50_ms: f64,
    pub server_other_p50_ms: f64,
    pub server_total_p99_ms: f64,
}

/// Questions about the `knowledge/` sample corpus, in English and Spanish.
pub const KNOWLEDGE_QUESTIONS: &[&str] = &[
    "How many days of annual vacation do employees get?",
    "How do I report a phishing email?",
    "What is the per diem in Bogotá?",
    "How long must a password be?",
    "How do I set up the VPN?",
    "When are expense reports due?",
    "What happens if I lose my laptop?",
    "How many weeks of parental leave are there?",
    "¿Cuántos días de vacaciones tengo en Chile?",
    "¿Cómo se reembolsan los gastos de movilización?",
    "¿Qué hago si tengo un accidente laboral?",
    "What does abstained mean in Verity?",
    "How do I re-ingest changed documents?",
    "Where can visitors park?",
    "Who won the 1998 football World Cup?",
    "What is the data classification for customer contracts?",
];

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn server_timing(header: &str, name: &str) -> Option<f64> {
    header.split(',').find_map(|part| {
        let part = part.trim();
        let rest = part.strip_prefix(name)?.strip_prefix(";dur=")?;
        rest.parse().ok()
    })
}

/// Sends `requests` queries at each concurrency level, in each retrieval mode, to `base_url`
/// and measures latency. Modes alternate within each concurrency level, so they are compared
/// under the same conditions.
pub async fn bench_query(
    base_url: &str,
    collection: Option<&str>,
    modes: &[RetrievalMode],
    concurrency_levels: &[usize],
    requests: usize,
    bearer: Option<&str>,
) -> anyhow::Result<Vec<QueryBench>> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = bearer {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .default_headers(headers)
        .build()?;
    let url = format!("{}/v1/query", base_url.trim_end_matches('/'));
    let body = |i: usize, mode: RetrievalMode| {
        let mut body = serde_json::json!({
            "question": KNOWLEDGE_QUESTIONS[i % KNOWLEDGE_QUESTIONS.len()],
            "mode": mode,
        });
        if let Some(c) = collection {
            body["collection"] = c.into();
        }
        body
    };
    // Warm up connections, caches and the model.
    for i in 0..20 {
        let response = client
            .post(&url)
            .json(&body(i, RetrievalMode::ALL[i % 3]))
            .send()
            .await
            .context("cannot reach the server")?;
        anyhow::ensure!(
            response.status().is_success(),
            "warm-up query failed: HTTP {}",
            response.status()
        );
    }

    let mut results = Vec::new();
    for (&concurrency, &mode) in concurrency_levels
        .iter()
        .flat_map(|c| modes.iter().map(move |m| (c, m)))
    {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (client, url, next) = (client.clone(), url.clone(), Arc::clone(&next));
            let bodies: Vec<serde_json::Value> = (0..requests).map(|i| body(i, mode)).collect();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    let sent = Instant::now();
                    let response = client.post(&url).json(&bodies[i]).send().await;
                    let sample = match response {
                        Ok(response) if response.status().is_success() => {
                            let timing = response
                                .headers()
                                .get("server-timing")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let ok = response.bytes().await.is_ok();
                            let latency = sent.elapsed().as_secs_f64() * 1000.0;
                            ok.then_some((latency, timing))
                        }
                        _ => None,
                    };
                    samples.push(sample);
                }
                samples
            }));
        }
        let mut latencies = Vec::new();
        let mut timings = Vec::new();
        let mut errors = 0;
        for task in tasks {
            for sample in task.await? {
                match sample {
                    Some((latency, timing)) => {
                        latencies.push(latency);
                        timings.push(timing);
                    }
                    None => errors += 1,
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let series = |name: &str| {
            let mut v: Vec<f64> = timings
                .iter()
                .filter_map(|t| server_timing(t, name))
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        results.push(QueryBench {
            mode,
            concurrency,
            requests: latencies.len(),
            errors,
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            max_ms: latencies.last().copied().unwrap_or(0.0),
            requests_per_s: latencies.len() as f64 / elapsed,
            server_embed_p50_ms: percentile(&series("embed"), 50.0),
            server_search_p50_ms: percentile(&series("search"), 50.0),
            server_other_p50_ms: percentile(&series("other"), 50.0),
            server_total_p99_ms: percentile(&series("total"), 99.0),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_server_timing_are_read_correctly() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        let header = "embed;dur=2.500, search;dur=0.700, other;dur=0.100, total;dur=3.300";
        assert_eq!(server_timing(header, "search"), Some(0.7));
        assert_eq!(server_timing(header, "total"), Some(3.3));
    }
}
