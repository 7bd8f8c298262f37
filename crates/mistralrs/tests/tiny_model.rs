//! The real mistral.rs code path on CPU: a tiny random Llama written by the test is loaded from
//! a local directory, streams tokens, and stops when its reader goes away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use verity_core::{AnswerEvent, GroundingStatus, RetrievedChunk, Timings};
use verity_generate::{
    AnswerConfig, Answerer, ChatMessage, ExtractiveAnswerer, GenerationError, GenerationParams,
    Generator, Role,
};
use verity_mistralrs::{LlamaShape, MistralRsConfig, MistralRsGenerator, write_random_llama};

async fn tiny_generator() -> (tempfile::TempDir, MistralRsGenerator) {
    let dir = tempfile::tempdir().unwrap();
    write_random_llama(dir.path(), LlamaShape::TINY, 7).unwrap();
    let mut config = MistralRsConfig::new(dir.path());
    config.force_cpu = true;
    let generator = MistralRsGenerator::load(&config).await.unwrap();
    (dir, generator)
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage {
            role: Role::System,
            content: "Answer from the sources.".into(),
        },
        ChatMessage {
            role: Role::User,
            content: "How many days of leave?".into(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_model_loads_without_network_and_streams_tokens() {
    let (_dir, generator) = tiny_generator().await;
    assert!(generator.name().starts_with("mistralrs:"));
    assert_eq!(generator.context_window(), 4096);
    // The model's own byte-level tokenizer counts one token per byte.
    assert_eq!(generator.count_tokens("abc"), 3);

    let (tx, mut rx) = mpsc::channel(256);
    let params = GenerationParams {
        max_tokens: 24,
        temperature: 0.0,
    };
    let messages = messages();
    let (stats, pieces) = tokio::join!(generator.generate(&messages, params, tx), async {
        let mut pieces = Vec::new();
        while let Some(piece) = rx.recv().await {
            pieces.push(piece);
        }
        pieces
    });
    let stats = stats.unwrap();
    assert!(pieces.len() > 1, "streamed in pieces: {pieces:?}");
    assert!(stats.completion_tokens > 0 && stats.completion_tokens <= 24);
    assert!(stats.prompt_tokens > 10, "{stats:?}");
    assert!(stats.first_token.unwrap() <= stats.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_cancels_the_generation() {
    let (_dir, generator) = tiny_generator().await;
    let (tx, mut rx) = mpsc::channel(1);
    let params = GenerationParams {
        max_tokens: 3000,
        temperature: 0.0,
    };
    let started = Instant::now();
    let messages = messages();
    let (result, _) = tokio::join!(generator.generate(&messages, params, tx), async move {
        let first = rx.recv().await;
        drop(rx);
        first
    });
    assert!(
        matches!(result, Err(GenerationError::Cancelled)),
        "{result:?}"
    );
    // 3,000 tokens would take far longer than this.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grounded_answer_runs_through_the_model_and_is_verified() {
    let (_dir, generator) = tiny_generator().await;
    let answerer = Arc::new(Answerer::new(
        ExtractiveAnswerer::default(),
        Some(Arc::new(generator)),
        AnswerConfig {
            params: GenerationParams {
                max_tokens: 32,
                temperature: 0.0,
            },
            ..AnswerConfig::default()
        },
    ));
    let passage = RetrievedChunk {
        chunk_id: "c1".into(),
        document_id: "d1".into(),
        collection: "default".into(),
        title: "Leave policy".into(),
        source: "/kb/leave.md".into(),
        start: 0,
        end: 60,
        text: "Employees receive 20 working days of annual leave per year.".into(),
        heading_path: vec![],
        page: None,
        score: 0.8,
        similarity: 0.8,
    };
    let ticket = answerer.admit().unwrap();
    let mut events = answerer.start(
        ticket,
        "How many days of annual leave do employees receive?".into(),
        vec![passage],
        Timings::default(),
        Instant::now(),
    );
    let mut names = Vec::new();
    let mut grounding = None;
    while let Some(event) = events.recv().await {
        names.push(event.name());
        if let AnswerEvent::Grounding(answer) = event {
            grounding = Some(answer);
        }
    }
    assert_eq!(names.first(), Some(&"sources"));
    assert!(names.contains(&"delta"));
    assert_eq!(&names[names.len() - 2..], ["grounding", "done"]);
    let answer = grounding.unwrap();
    assert!(answer.generator.starts_with("mistralrs:"));
    // Random weights write noise, which cites nothing: verification must not let it through.
    assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
    assert_eq!(answer.citations.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_measured_at_load_says_how_long_an_answer_takes() {
    let dir = tempfile::tempdir().unwrap();
    write_random_llama(dir.path(), LlamaShape::TINY, 7).unwrap();
    let mut config = MistralRsConfig::new(dir.path());
    config.force_cpu = true;
    config.measure_speed = true;
    let generator = MistralRsGenerator::load(&config).await.unwrap();
    let speed = generator.speed().expect("measured");
    assert!(speed.prefill_tokens_per_s > 0.0 && speed.decode_tokens_per_s > 0.0);
    let short = generator.expected_duration(100, 10).unwrap();
    let long = generator.expected_duration(1000, 500).unwrap();
    assert!(short > Duration::ZERO && long > short, "{short:?} {long:?}");
    // Exactly the measured rates: prompt at the prefill rate, answer at the decode rate.
    let expected = 1000.0 / speed.prefill_tokens_per_s + 500.0 / speed.decode_tokens_per_s;
    assert!((long.as_secs_f64() - expected).abs() < 1e-6);

    // Not measured: unknown.
    let (_dir, unmeasured) = tiny_generator().await;
    assert!(unmeasured.speed().is_none());
    assert!(unmeasured.expected_duration(100, 10).is_none());
}
