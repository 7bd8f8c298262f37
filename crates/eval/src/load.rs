//! `verity bench load`: what the server does at four times the load it sustains. First the
//! sustainable rate is measured with closed-loop clients; then requests arrive open-loop
//! (at a fixed pace, whether or not earlier ones were answered) at `factor` times that rate.
//! Reported: how many were answered and how fast, how many were refused (429/503) and how
//! fast, and the process's resident memory before, during and after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::bench::{KNOWLEDGE_QUESTIONS, memory_mib, percentile};

#[derive(Debug, Clone, Serialize)]
pub struct LoadBench {
    /// Closed-loop clients used to find the sustainable rate.
    pub capacity_clients: usize,
    /// Requests per second those clients were answered at.
    pub capacity_rps: f64,
    pub capacity_p50_ms: f64,
    pub capacity_p99_ms: f64,
    /// The open-loop arrival rate: `factor` × `capacity_rps`.
    pub offered_rps: f64,
    pub seconds: f64,
    pub sent: usize,
    pub answered: usize,
    pub answered_p50_ms: f64,
    pub answered_p99_ms: f64,
    /// 429 and 503.
    pub refused: usize,
    pub refused_p50_ms: f64,
    pub refused_p99_ms: f64,
    /// Timeouts, connection errors and other statuses.
    pub failed: usize,
    /// Arrivals not sent because the load generator already had this many outstanding.
    pub skipped: usize,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_after_mib: f64,
}

/// Resident memory of this process (server and load generator together), in MiB.
fn rss_mib() -> f64 {
    memory_mib("VmRSS")
}

enum Outcome {
    Answered(f64),
    Refused(f64),
    Failed,
}

async fn one(client: &reqwest::Client, url: &str, i: usize) -> Outcome {
    let body = serde_json::json!({"question": KNOWLEDGE_QUESTIONS[i % KNOWLEDGE_QUESTIONS.len()]});
    let sent = Instant::now();
    match client.post(url).json(&body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let read = response.bytes().await.is_ok();
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            match status {
                200 if read => Outcome::Answered(ms),
                429 | 503 => Outcome::Refused(ms),
                _ => Outcome::Failed,
            }
        }
        Err(_) => Outcome::Failed,
    }
}

/// Loads the server at `base_url` (which must be this process's, for the memory figures).
pub async fn bench_load(
    base_url: &str,
    capacity_clients: usize,
    capacity_requests: usize,
    factor: f64,
    seconds: f64,
) -> anyhow::Result<LoadBench> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .build()?;
    let url = format!("{}/v1/query", base_url.trim_end_matches('/'));
    for i in 0..20 {
        match one(&client, &url, i).await {
            Outcome::Answered(_) => {}
            _ => anyhow::bail!("warm-up query to {url} failed"),
        }
    }

    // The sustainable rate: closed-loop clients, each sending its next request when the last
    // is answered.
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..capacity_clients.max(1) {
        let (client, url, next) = (client.clone(), url.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= capacity_requests {
                    return latencies;
                }
                if let Outcome::Answered(ms) = one(&client, &url, i).await {
                    latencies.push(ms);
                }
            }
        }));
    }
    let mut capacity = Vec::new();
    for task in tasks {
        capacity.extend(task.await?);
    }
    let capacity_rps = capacity.len() as f64 / started.elapsed().as_secs_f64();
    capacity.sort_by(f64::total_cmp);
    anyhow::ensure!(
        capacity.len() == capacity_requests,
        "{} of {capacity_requests} closed-loop queries failed: the server does not sustain even that",
        capacity_requests - capacity.len()
    );

    // Open loop at `factor` × that rate, with memory sampled throughout.
    let rss_before = rss_mib();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let offered_rps = capacity_rps * factor;
    let interval = Duration::from_secs_f64(1.0 / offered_rps);
    let total = (offered_rps * seconds).round() as usize;
    // Bounds the load generator's own memory if the server stopped answering altogether.
    let max_outstanding = 4_096;
    let outstanding = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::with_capacity(total);
    let mut skipped = 0;
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        if outstanding.load(Ordering::Relaxed) >= max_outstanding {
            skipped += 1;
            continue;
        }
        outstanding.fetch_add(1, Ordering::Relaxed);
        let (client, url, outstanding) = (client.clone(), url.clone(), Arc::clone(&outstanding));
        requests.push(tokio::spawn(async move {
            let outcome = one(&client, &url, i).await;
            outstanding.fetch_sub(1, Ordering::Relaxed);
            outcome
        }));
    }
    let (mut answered, mut refused, mut failed) = (Vec::new(), Vec::new(), 0);
    for request in requests {
        match request.await? {
            Outcome::Answered(ms) => answered.push(ms),
            Outcome::Refused(ms) => refused.push(ms),
            Outcome::Failed => failed += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let rss_peak = sampler.await.context("memory sampler")?;
    answered.sort_by(f64::total_cmp);
    refused.sort_by(f64::total_cmp);
    Ok(LoadBench {
        capacity_clients,
        capacity_rps,
        capacity_p50_ms: percentile(&capacity, 50.0),
        capacity_p99_ms: percentile(&capacity, 99.0),
        offered_rps,
        seconds: elapsed,
        sent: total - skipped,
        answered: answered.len(),
        answered_p50_ms: percentile(&answered, 50.0),
        answered_p99_ms: percentile(&answered, 99.0),
        refused: refused.len(),
        refused_p50_ms: percentile(&refused, 50.0),
        refused_p99_ms: percentile(&refused, 99.0),
        failed,
        skipped,
        rss_before_mib: rss_before,
        rss_peak_mib: rss_peak.max(rss_before),
        rss_after_mib: rss_mib(),
    })
}
