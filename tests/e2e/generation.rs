//! Generated answers over HTTP, with the `openai` backend pointed at a local engine that speaks
//! the chat-completions protocol: Server-Sent Events in the contract's order, the same grounding
//! streamed and not, 429 with `Retry-After` over capacity, cancellation when the client leaves,
//! and the generation metrics.

#[path = "../../crates/generate/tests/support/mock_engine.rs"]
mod mock_engine;

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_engine::MockEngine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use verity_cli::settings::GenerationBackend;

use crate::helpers::{TestApp, knowledge_dir, server_runtime};
use verity_service::pipeline::IngestOptions;

const QUESTION: &str = "How many working days of paid vacation does a full-time employee receive?";

struct GeneratingApp {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    engine: MockEngine,
    _app: TestApp,
}

/// A Verity on the vacation policy whose answers come from the mock engine's `model`.
fn start(model: &str, max_concurrent: usize, max_queued: usize) -> GeneratingApp {
    let runtime = server_runtime();
    let (engine, app) = runtime.block_on(async {
        let engine = mock_engine::start();
        let policy = knowledge_dir().join("handbook/leave/annual-vacation.md");
        let app = TestApp::builder()
            .settings(|s| {
                s.generation.backend = GenerationBackend::Openai;
                s.generation.openai.base_url = Some(engine.base_url.clone());
                s.generation.openai.model = Some(model.to_string());
                s.generation.max_concurrent = max_concurrent;
                s.generation.max_queued = max_queued;
            })
            .ingest(vec![policy], IngestOptions::new("default"))
            .generating()
            .serve()
            .await;
        (engine, app)
    });
    GeneratingApp {
        runtime,
        base_url: app.base_url.clone(),
        engine,
        _app: app,
    }
}

fn echo_app() -> &'static GeneratingApp {
    static APP: OnceLock<GeneratingApp> = OnceLock::new();
    APP.get_or_init(|| start("echo", 4, 16))
}

/// Reads a whole SSE body into (event, data) pairs.
fn parse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (name, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

async fn post_query(base_url: &str, body: Value, accept: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/v1/query"))
        .json(&body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

#[test]
fn a_streamed_answer_follows_the_event_contract_and_matches_the_json_answer() {
    let app = echo_app();
    app.runtime.block_on(async {
        let response = post_query(
            &app.base_url,
            json!({"question": QUESTION, "stream": true}),
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let events = parse_events(&response.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "sources");
        assert!(names[1..names.len() - 2].iter().all(|n| *n == "delta"));
        assert!(names.len() > 5, "{names:?}");
        assert_eq!(&names[names.len() - 2..], ["grounding", "done"]);

        let sources = events[0].1["citations"].as_array().unwrap();
        let grounding = &events[names.len() - 2].1;
        // The verified answer lists only the sources its sentences cite, under the numbers
        // the `sources` event gave them (the echo model cites [1]).
        assert_eq!(grounding["citations"], json!([sources[0].clone()]));
        assert_eq!(grounding["grounding"]["status"], "grounded");
        assert_eq!(grounding["grounding"]["unsupported"], json!([]));
        assert!(
            grounding["answer"]
                .as_str()
                .unwrap()
                .contains("20 working days")
        );
        let deltas: String = events
            .iter()
            .filter(|(n, _)| n == "delta")
            .map(|(_, d)| d["text"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, grounding["answer"].as_str().unwrap());
        assert!(
            events.last().unwrap().1["timings"]["total_ms"]
                .as_f64()
                .unwrap()
                > 0.0
        );

        // The same question answered as one JSON object: the same answer, citations, grounding.
        let whole: Value = post_query(&app.base_url, json!({"question": QUESTION}), None)
            .await
            .json()
            .await
            .unwrap();
        for field in ["answer", "citations", "grounding", "generator"] {
            assert_eq!(whole[field], grounding[field], "{field} differs");
        }
        assert_eq!(whole["generator"], "openai:echo");
    });
}

#[test]
fn accept_text_event_stream_asks_for_a_stream_too() {
    let app = echo_app();
    app.runtime.block_on(async {
        let response = post_query(
            &app.base_url,
            json!({"question": QUESTION}),
            Some("text/event-stream"),
        )
        .await;
        let events = parse_events(&response.text().await.unwrap());
        assert_eq!(events.first().unwrap().0, "sources");
        assert_eq!(events.last().unwrap().0, "done");
    });
}

#[test]
fn generation_metrics_are_exported() {
    let app = echo_app();
    app.runtime.block_on(async {
        post_query(&app.base_url, json!({"question": QUESTION}), None).await;
        let text = reqwest::get(format!("{}/metrics", app.base_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for metric in [
            "verity_generation_in_flight",
            "verity_generation_queued",
            "verity_generation_rejected_total",
            "verity_generation_first_token_seconds_bucket",
            "verity_answers_total{grounding=\"grounded\"}",
            "verity_http_request_seconds_bucket{route=\"/v1/query\"",
        ] {
            assert!(text.contains(metric), "{metric} missing from /metrics");
        }
    });
}

#[test]
fn a_request_over_capacity_gets_429_with_retry_after_at_once() {
    let app = start("echo-slow", 1, 0);
    app.runtime.block_on(async {
        let base_url = app.base_url.clone();
        let busy = tokio::spawn(async move {
            post_query(&base_url, json!({"question": QUESTION}), None).await
        });
        // Wait until the first request holds the only slot.
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.engine.state.attempts.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        let refused = post_query(&app.base_url, json!({"question": QUESTION}), None).await;
        let took = started.elapsed();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "busy");
        // Refused before any retrieval or generation: well under the engine's one second.
        assert!(took < Duration::from_millis(500), "{took:?}");

        let first = busy.await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
    });
}

#[test]
fn a_client_that_disconnects_cancels_its_generation() {
    let app = start("endless", 4, 16);
    app.runtime.block_on(async {
        let response = post_query(
            &app.base_url,
            json!({"question": QUESTION, "stream": true}),
            None,
        )
        .await;
        let mut body = response.bytes_stream();
        let mut seen = String::new();
        while !seen.contains("event: delta") {
            seen.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
        drop(body);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !app.engine.state.disconnected.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the engine kept generating for a client that left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_chat_completions_client_that_disconnects_cancels_its_generation() {
    let app = start("endless", 4, 16);
    app.runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", app.base_url))
            .json(&json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Streamed chat completions carry only verified text: the role chunk comes at once,
        // the text only after verification, which an endless generation never reaches.
        let mut body = response.bytes_stream();
        let first = String::from_utf8_lossy(&body.next().await.unwrap().unwrap()).into_owned();
        assert!(first.contains("\"role\":\"assistant\""), "{first}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.engine.state.attempts.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the engine was never asked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(body);
        while !app.engine.state.disconnected.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the engine kept generating for a chat client that left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
