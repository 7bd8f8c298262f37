//! The `openai` backend against a real OpenAI-compatible engine: llama.cpp's `llama-server`
//! serving SmolLM2-135M (the GGUF `scripts/models.sh smollm2-135m` installs), beside the mock
//! engine of `generation.rs`. The real protocol end to end: a streamed answer (sources, deltas
//! as the engine writes them, then the verified grounding), the same question answered whole,
//! and an engine that refuses the request (a prompt over its context) answered by the fallback
//! with a reason that holds no engine text.
//!
//! `llama-server` is not built by the test command (a cmake build of about 25 minutes here;
//! docs/benchmarks.md says how). These tests run when `VERITY_LLAMA_SERVER` names the binary,
//! and otherwise say on stderr that they did not run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use verity_cli::settings::GenerationBackend;

use crate::helpers::{TestApp, server_runtime, smollm2_dir, write};
use verity_service::pipeline::IngestOptions;

const POLICY: &str = "# Annual vacation\n\nEvery full-time employee receives 20 working days of paid \
    vacation per calendar year. Up to 5 unused days may be carried over into the next calendar \
    year; carried-over days must be taken by 31 March.\n";
const QUESTION: &str = "What does every full-time employee receive per calendar year?";

/// The `llama-server` binary, or `None` (and a line on stderr) when none was named.
fn llama_server(test: &str) -> Option<PathBuf> {
    match std::env::var_os("VERITY_LLAMA_SERVER").map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        Some(path) => panic!("VERITY_LLAMA_SERVER={} is not a file", path.display()),
        None => {
            eprintln!(
                "{test}: not run: set VERITY_LLAMA_SERVER to a llama-server binary (docs/benchmarks.md: building llama.cpp)"
            );
            None
        }
    }
}

/// A running `llama-server`, killed when dropped.
struct Engine {
    child: Child,
    base_url: String,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gguf(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "gguf"))
        .expect("a GGUF file")
}

/// Starts `llama-server` on SmolLM2 with a context of `context` tokens and waits until it
/// answers `/health`.
async fn start_engine(binary: &Path, context: usize) -> Engine {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .args(["-m", gguf(&smollm2_dir()).to_str().unwrap()])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", &context.to_string(), "-t", "2", "--parallel", "1"])
        // Its shared libraries sit beside it in a cmake build.
        .env("LD_LIBRARY_PATH", binary.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama-server starts");
    let engine = Engine {
        child,
        base_url: format!("http://127.0.0.1:{port}/v1"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return engine;
        }
        assert!(
            Instant::now() < deadline,
            "llama-server was not ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Verity on the vacation policy, answering through a `llama-server` of `context` tokens,
/// served over HTTP. Fields drop in order: the runtime (and with it the server holding the
/// index) before the engine and the data directory.
struct Served {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    _engine: Engine,
    _app: TestApp,
}

fn served(binary: &Path, context: usize) -> Served {
    let runtime = server_runtime();
    let (engine, app) = runtime.block_on(async {
        let engine = start_engine(binary, context).await;
        let builder = TestApp::builder();
        let policy = write(&builder.docs(), "vacation.md", POLICY);
        let app = builder
            .settings(|s| {
                s.generation.backend = GenerationBackend::Openai;
                s.generation.openai.base_url = Some(engine.base_url.clone());
                s.generation.openai.model = Some("smollm2-135m".into());
                s.generation.max_tokens = 64;
                s.generation.timeout_seconds = 120;
            })
            .ingest(vec![policy], IngestOptions::new("default"))
            .generating()
            .serve()
            .await;
        (engine, app)
    });
    Served {
        runtime,
        base_url: app.base_url.clone(),
        _engine: engine,
        _app: app,
    }
}

/// (event, data) pairs of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((
                name.to_string(),
                serde_json::from_str(data).unwrap_or(Value::Null),
            ))
        })
        .collect()
}

#[test]
fn llama_server_answers_streamed_and_whole_with_verified_citations() {
    let Some(binary) = llama_server("llama_server_answers_streamed_and_whole") else {
        return;
    };
    let app = served(&binary, 4096);
    let base_url = &app.base_url;
    app.runtime.block_on(async {
        let client = reqwest::Client::new();

        let streamed = client
            .post(format!("{base_url}/v1/query"))
            .json(&json!({"question": QUESTION, "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.status(), reqwest::StatusCode::OK);
        let body = streamed.text().await.unwrap();
        let events = events(&body);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names.first(), Some(&"sources"), "{body}");
        assert!(
            names.contains(&"delta"),
            "the engine's text streams as it is written: {body}"
        );
        let grounding = names.iter().position(|n| *n == "grounding").expect(&body);
        assert!(
            names[1..grounding].iter().all(|n| *n == "delta"),
            "{names:?}"
        );
        assert_eq!(names.last(), Some(&"done"), "{body}");
        let answer = &events[grounding].1;
        assert!(
            answer["generator"].as_str().unwrap().starts_with("openai:"),
            "the engine wrote it, not a fallback: {answer:#}"
        );
        assert!(
            matches!(
                answer["grounding"]["status"].as_str(),
                Some("grounded" | "partial")
            ),
            "{answer:#}"
        );
        assert!(
            answer["answer"].as_str().unwrap().contains("[1]"),
            "{answer:#}"
        );
        assert!(
            answer["citations"][0]["source"]
                .as_str()
                .unwrap()
                .ends_with("vacation.md"),
            "{answer:#}"
        );

        let whole: Value = client
            .post(format!("{base_url}/v1/query"))
            .json(&json!({"question": QUESTION}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            whole["generator"].as_str().unwrap().starts_with("openai:"),
            "{whole:#}"
        );
        assert!(
            matches!(
                whole["grounding"]["status"].as_str(),
                Some("grounded" | "partial")
            ),
            "{whole:#}"
        );
    });
}

#[test]
fn a_request_the_engine_refuses_falls_back_with_a_reason_and_no_engine_text() {
    let Some(binary) = llama_server("a_request_the_engine_refuses_falls_back") else {
        return;
    };
    // A context of 128 tokens: Verity's prompt (rules, the passage, the question) is longer,
    // and llama-server answers 400.
    let app = served(&binary, 128);
    let base_url = &app.base_url;
    app.runtime.block_on(async {
        let answer: Value = reqwest::Client::new()
            .post(format!("{base_url}/v1/query"))
            .json(&json!({"question": QUESTION}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["generator"], "extractive", "{answer:#}");
        let reason = answer["grounding"]["reason"].as_str().unwrap();
        assert!(reason.contains("the language model failed"), "{reason}");
        assert!(
            !reason.contains("127.0.0.1") && !reason.contains("context"),
            "engine text reached the caller: {reason}"
        );
        // The fallback still answers from the policy.
        assert!(
            answer["answer"]
                .as_str()
                .unwrap()
                .contains("20 working days"),
            "{answer:#}"
        );
    });
}
