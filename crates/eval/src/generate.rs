//! `verity bench generate` and `verity bench verify`: the language model's speed (time to
//! first token, decode tokens/s, against the memory-bandwidth bound) and what Verity adds around
//! it (prompt building, verification, streaming through the answer pipeline).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use verity_core::{AnswerEvent, Language, RetrievedChunk, Timings};
use verity_generate::{
    AnswerConfig, Answerer, ExtractiveAnswerer, GenerationParams, GenerationStats, Generator,
    SourceEvidence, build_prompt, sanitize, verify,
};
use verity_mistralrs::{
    ActivationDtype, LlamaShape, MistralRsConfig, MistralRsGenerator, Quantization,
};

#[derive(Debug, Clone)]
pub struct GenerateBenchOptions {
    /// A local model directory; with `random`, where the random model is written.
    pub model_dir: Option<PathBuf>,
    /// Write a random Llama of this shape first (no weights can be downloaded here).
    pub random: Option<LlamaShape>,
    pub prompt_tokens: usize,
    pub max_tokens: usize,
    pub concurrency: usize,
    pub requests: usize,
    pub quantization: Quantization,
    pub force_cpu: bool,
    pub dtype: ActivationDtype,
    /// Rounds of the engine-alone versus pipeline comparison (0: skip it).
    pub overhead_rounds: usize,
}

#[derive(Debug, Serialize)]
pub struct GenerateBench {
    pub model: String,
    pub weights_bytes: u64,
    pub dtype: ActivationDtype,
    /// Loading the model.
    pub load_seconds: f64,
    /// The first request's time to first token: the whole prompt prefilled, nothing cached.
    /// The later requests send the same prompt, which mistral.rs's prefix cache may reuse.
    pub cold_first_token_ms: f64,
    /// The first request's decode speed.
    pub cold_decode_tokens_per_s: f64,
    /// The prompt as Verity counts it (3 characters a token when the model directory has no
    /// `tokenizer.json`, as GGUF directories do not)…
    pub prompt_tokens: usize,
    /// …and as the engine reported it for the first request (0 if it did not).
    pub engine_prompt_tokens: usize,
    /// The first request's prefill speed: the engine's prompt tokens over its first-token time.
    pub cold_prefill_tokens_per_s: f64,
    pub max_tokens: usize,
    pub concurrency: usize,
    pub requests: usize,
    pub first_token_p50_ms: f64,
    pub first_token_p95_ms: f64,
    /// Per stream, median.
    pub decode_tokens_per_s_p50: f64,
    /// All streams together: completion tokens over wall time.
    pub aggregate_tokens_per_s: f64,
    /// Weights read per decoded token (batch 1) times the single-stream decode speed: the
    /// memory bandwidth the measured speed implies. Compare with the device's bandwidth.
    pub implied_bandwidth_gb_per_s: f64,
    /// The same sources asked straight from the engine, and through Verity's answer pipeline,
    /// one request at a time, medians.
    pub engine_only_ms_p50: f64,
    pub pipeline_ms_p50: f64,
    /// Median time a pipeline request spent outside the engine's generate call: admission,
    /// prompt building, the event channel, sanitizing and verification.
    pub pipeline_overhead_ms: f64,
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn weights_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".safetensors") || name.ends_with(".gguf")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Passages of policy-like text, about `tokens` tokens in all as `count` counts them.
fn synthetic_passages(tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<RetrievedChunk> {
    const SENTENCES: [&str; 5] = [
        "Every full-time employee receives 20 working days of paid vacation per calendar year.",
        "Requests for more than 10 consecutive working days must be submitted 30 days in advance.",
        "Meals on business trips are reimbursed up to 45 euros per day against receipts.",
        "Laptops are replaced every four years or earlier when a repair costs more than half.",
        "Carried-over vacation days must be taken by 31 March or they are forfeited.",
    ];
    let per_passage = (tokens / 5).max(8);
    (0..5)
        .map(|i| {
            let mut text = String::new();
            let mut k = i;
            while count(&text) < per_passage {
                text.push_str(SENTENCES[k % SENTENCES.len()]);
                text.push(' ');
                k += 1;
            }
            RetrievedChunk {
                chunk_id: format!("bench-{i}"),
                document_id: format!("doc-{i}"),
                collection: "bench".into(),
                title: format!("Policy {}", i + 1),
                source: format!("/bench/policy-{i}.md"),
                start: 0,
                end: text.chars().count(),
                text: text.trim_end().to_string(),
                heading_path: vec![],
                page: None,
                score: 0.9,
                similarity: 0.9,
            }
        })
        .collect()
}

const QUESTION: &str = "How many days of paid vacation does a full-time employee receive?";

async fn one_generation(
    generator: &dyn Generator,
    messages: &[verity_generate::ChatMessage],
    params: GenerationParams,
) -> anyhow::Result<GenerationStats> {
    let (tx, mut rx) = mpsc::channel(256);
    let drain = async { while rx.recv().await.is_some() {} };
    let (stats, ()) = tokio::join!(generator.generate(messages, params, tx), drain);
    Ok(stats?)
}

pub async fn bench_generate(options: &GenerateBenchOptions) -> anyhow::Result<GenerateBench> {
    let scratch;
    let dir = match (&options.model_dir, options.random) {
        (Some(dir), Some(shape)) => {
            verity_mistralrs::write_random_llama(dir, shape, 1)?;
            dir.clone()
        }
        (None, Some(shape)) => {
            scratch = tempfile::tempdir()?;
            verity_mistralrs::write_random_llama(scratch.path(), shape, 1)?;
            scratch.path().to_path_buf()
        }
        (Some(dir), None) => dir.clone(),
        (None, None) => {
            anyhow::bail!("give --model DIR (a local model) or --random-model tiny|small")
        }
    };
    let mut config = MistralRsConfig::new(&dir);
    config.quantization = options.quantization;
    config.force_cpu = options.force_cpu;
    config.max_batch = options.concurrency.max(1);
    config.dtype = options.dtype;
    let loading = Instant::now();
    let generator: Arc<dyn Generator> = Arc::new(MistralRsGenerator::load(&config).await?);
    let load_seconds = loading.elapsed().as_secs_f64();
    let params = GenerationParams {
        max_tokens: options.max_tokens,
        temperature: 0.0,
    };
    let passages = synthetic_passages(options.prompt_tokens, &|t| generator.count_tokens(t));
    let prompt = build_prompt(
        QUESTION,
        Language::English,
        &passages,
        generator.context_window(),
        options.max_tokens,
        &|t| generator.count_tokens(t),
    );
    let prompt_tokens: usize = prompt
        .messages
        .iter()
        .map(|m| generator.count_tokens(&m.content))
        .sum();

    // Warm up (first-call allocations, kernels); its prefill is the uncached one.
    let cold = one_generation(generator.as_ref(), &prompt.messages, params).await?;

    // Throughput: `requests` generations, `concurrency` at a time.
    let mut first_tokens = Vec::new();
    let mut decode_speeds = Vec::new();
    let mut completion_tokens = 0usize;
    let wall = Instant::now();
    let mut remaining = options.requests.max(1);
    while remaining > 0 {
        let batch = remaining.min(options.concurrency.max(1));
        remaining -= batch;
        let runs = (0..batch).map(|_| {
            let generator = generator.clone();
            let messages = prompt.messages.clone();
            tokio::spawn(async move { one_generation(generator.as_ref(), &messages, params).await })
        });
        for run in futures_util::future::join_all(runs).await {
            let stats = run??;
            completion_tokens += stats.completion_tokens;
            if let Some(first) = stats.first_token {
                first_tokens.push(ms(first));
            }
            if let Some(speed) = stats.decode_tokens_per_second() {
                decode_speeds.push(speed);
            }
        }
    }
    let wall = wall.elapsed().as_secs_f64();

    // Overhead: engine alone versus the answer pipeline, same sources, one at a time.
    let answerer = Arc::new(Answerer::new(
        ExtractiveAnswerer::default(),
        Some(generator.clone()),
        AnswerConfig {
            params,
            timeout: Duration::from_secs(600),
            ..AnswerConfig::default()
        },
    ));
    let rounds = options.overhead_rounds;
    let mut engine_only = Vec::new();
    let mut pipeline = Vec::new();
    let mut around_engine = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        one_generation(generator.as_ref(), &prompt.messages, params).await?;
        engine_only.push(ms(started.elapsed()));

        let started = Instant::now();
        let ticket = answerer.admit()?;
        let mut events = answerer.start(
            ticket,
            QUESTION.to_string(),
            passages.clone(),
            Timings::default(),
            started,
        );
        while let Some(event) = events.recv().await {
            if let AnswerEvent::Done(timings) = event {
                // Everything but the engine's own time: admission, prompt building, the event
                // channel, sanitizing, verification.
                around_engine.push(timings.total_ms - timings.generate_ms);
                break;
            }
        }
        pipeline.push(ms(started.elapsed()));
    }
    let engine_only_ms_p50 = percentile(&mut engine_only, 50.0);
    let pipeline_ms_p50 = percentile(&mut pipeline, 50.0);

    let weights = weights_bytes(&dir);
    let decode_p50 = percentile(&mut decode_speeds, 50.0);
    Ok(GenerateBench {
        model: generator.name(),
        weights_bytes: weights,
        dtype: options.dtype,
        load_seconds,
        cold_first_token_ms: cold.first_token.map_or(0.0, ms),
        cold_decode_tokens_per_s: cold.decode_tokens_per_second().unwrap_or(0.0),
        prompt_tokens,
        engine_prompt_tokens: cold.prompt_tokens,
        cold_prefill_tokens_per_s: cold
            .first_token
            .map_or(0.0, |first| cold.prompt_tokens as f64 / first.as_secs_f64()),
        max_tokens: options.max_tokens,
        concurrency: options.concurrency,
        requests: options.requests,
        first_token_p50_ms: percentile(&mut first_tokens, 50.0),
        first_token_p95_ms: percentile(&mut first_tokens, 95.0),
        decode_tokens_per_s_p50: decode_p50,
        aggregate_tokens_per_s: completion_tokens as f64 / wall,
        implied_bandwidth_gb_per_s: weights as f64 * decode_p50 / 1e9,
        engine_only_ms_p50,
        pipeline_ms_p50,
        pipeline_overhead_ms: percentile(&mut around_engine, 50.0),
    })
}

#[derive(Debug, Serialize)]
pub struct VerifyBench {
    pub answer_words: usize,
    pub sources: usize,
    pub iterations: usize,
    pub prompt_build_us_p50: f64,
    pub verify_us_p50: f64,
    pub verify_us_p99: f64,
}

/// Prompt building, and sanitizing plus verifying a 300-word answer against 5 sources.
pub fn bench_verify(iterations: usize) -> VerifyBench {
    let count = |t: &str| t.chars().count().div_ceil(4);
    let passages = synthetic_passages(1000, &count);
    // 300 words: supported sentences quoted from the sources, an invented one every fourth.
    let mut answer = String::new();
    let mut sentence_index = 0;
    while answer.split_whitespace().count() < 300 {
        let source = sentence_index % passages.len();
        let text = &passages[source].text;
        let sentence = text.split(". ").nth(sentence_index % 3).unwrap_or(text);
        if sentence_index % 4 == 3 {
            answer.push_str(&format!(
                "Employees may also work from any country for six months [{}]. ",
                source + 1
            ));
        } else {
            answer.push_str(&format!(
                "{} [{}]. ",
                sentence.trim_end_matches('.'),
                source + 1
            ));
        }
        sentence_index += 1;
    }
    let mut prompt_times = Vec::with_capacity(iterations);
    let mut verify_times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let prompt = build_prompt(QUESTION, Language::English, &passages, 8192, 512, &count);
        prompt_times.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(prompt);

        let started = Instant::now();
        let evidence: Vec<SourceEvidence> = passages.iter().map(SourceEvidence::new).collect();
        let verification = verify(&sanitize(&answer), &evidence, 0.6);
        verify_times.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(verification);
    }
    VerifyBench {
        answer_words: answer.split_whitespace().count(),
        sources: passages.len(),
        iterations,
        prompt_build_us_p50: percentile(&mut prompt_times, 50.0),
        verify_us_p50: percentile(&mut verify_times, 50.0),
        verify_us_p99: percentile(&mut verify_times, 99.0),
    }
}
