//! Endpoints for clients that speak other protocols: `POST /v1/chat/completions`
//! (OpenAI-compatible, so support-agent tools that speak it plug in unchanged) and the seed's
//! `POST /generate {"prompt"}`.
//!
//! Key decision: an OpenAI client shows whatever text it receives, and knows nothing of
//! Verity's `grounding` event that replaces unverified text. So a streamed chat completion
//! sends only verified text: the role at once, then the verified answer, then a last chunk
//! with `finish_reason` and the `verity` extension (citations, grounding). `/v1/query` with
//! `"stream": true` is the endpoint that streams text as it is generated.

use std::convert::Infallible;
use std::time::Duration;

/// How long a streamed chat completion may stay silent (while its text is generated and
/// verified) before it shows it is alive, and so learns whether its client is still there.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);

use futures_util::StreamExt;

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use verity_core::{
    Answer, AnswerEvent, AnswerService, MetadataFilter, QueryRequest, RetrievalMode, VerityError,
    collect_answer,
};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{QuerySlots, start_answer};

/// An OpenAI chat-completions request. OpenAI's sampling fields (`temperature`, `max_tokens`,
/// `n`, …) are accepted and ignored: the server's settings decide how answers are generated.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    /// Verity's extensions.
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    mode: Option<RetrievalMode>,
    #[serde(default)]
    filter: Option<MetadataFilter>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ChatMessage {
    /// `system`, `user`, `assistant`, `developer` or `tool`.
    role: String,
    /// Text, or a list of `{"type": "text", "text": …}` parts.
    #[serde(default)]
    #[schema(value_type = Object)]
    content: Content,
}

/// A message's content: a string, or a list of parts of which the `text` ones count.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
    #[default]
    Missing,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            Content::Missing => String::new(),
        }
    }
}

impl ChatCompletionRequest {
    /// The question (the last message, which must be the user's) and the requested model name.
    fn into_query(self) -> Result<(QueryRequest, Option<String>), VerityError> {
        let Some(last) = self.messages.last() else {
            return Err(VerityError::invalid(
                "messages",
                "messages is empty: send at least one user message",
            ));
        };
        for message in &self.messages {
            if !["system", "user", "assistant", "developer", "tool"]
                .contains(&message.role.as_str())
            {
                return Err(VerityError::invalid(
                    "messages",
                    format!("unknown message role {:?}", message.role),
                ));
            }
        }
        if last.role != "user" {
            return Err(VerityError::invalid(
                "messages",
                format!(
                    "the last message must be the user's question, not a {:?} message",
                    last.role
                ),
            ));
        }
        // A follow-up ("And in Chile?") is asked together with the user's previous turn, so
        // that retrieval and the model see what it follows up on.
        let previous = self.messages[..self.messages.len() - 1]
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.text())
            .filter(|t| !t.trim().is_empty());
        let question = match previous {
            Some(previous) => format!("{}\n{}", previous.trim(), last.content.text().trim()),
            None => last.content.text(),
        };
        Ok((
            QueryRequest {
                question,
                collection: self.collection,
                top_k: self.top_k,
                mode: self.mode,
                filter: self.filter,
                stream: false,
            },
            self.model,
        ))
    }
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn created() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn verity_extension(answer: &Answer) -> Value {
    json!({
        "answer_id": answer.id,
        "citations": answer.citations,
        "grounding": answer.grounding,
        "generator": answer.generator,
    })
}

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "answers",
    summary = "OpenAI-compatible chat completion",
    description = "The last user message is the question. Streamed chunks carry only verified text.",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion (or, streamed, chat.completion.chunk events)", body = crate::openapi::ChatCompletion),
        (status = 400, description = "Malformed conversation", body = crate::openapi::ErrorEnvelope),
        (status = 401, description = "No valid key or token", body = crate::openapi::ErrorEnvelope),
        (status = 429, description = "Too many requests; see Retry-After", body = crate::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn chat_completions(
    Authenticated(caller): Authenticated,
    service: web::Data<dyn AnswerService>,
    slots: web::Data<QuerySlots>,
    request: web::Json<ChatCompletionRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = request.into_inner();
    let stream = request.stream;
    let (query, model) = request.into_query()?;
    let model = model.unwrap_or_else(|| "verity".to_string());
    let id = completion_id();
    let created = created();

    let events = start_answer(&slots, service.get_ref(), &caller, query).await?;
    if !stream {
        let (answer, _) = collect_answer(events).await?;
        return Ok(HttpResponse::Ok().json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer},
                "finish_reason": "stop"
            }],
            "verity": verity_extension(&answer),
        })));
    }

    let chunk = move |delta: Value, finish: Option<&str>, extension: Option<Value>| {
        let mut value = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let Some(extension) = extension {
            value["verity"] = extension;
        }
        Bytes::from(format!("data: {value}\n\n"))
    };
    let role = chunk(json!({"role": "assistant"}), None, None);
    // Each answer event becomes the chunks it stands for. The body owns `events`, so a client
    // that goes away drops them, which cancels the generation; the heartbeat below is how a
    // silent stream notices.
    let answer = futures_util::stream::unfold((events, chunk), |(mut events, chunk)| async move {
        loop {
            let chunks = match events.recv().await? {
                AnswerEvent::Grounding(answer) => vec![
                    chunk(json!({"content": answer.answer}), None, None),
                    chunk(json!({}), Some("stop"), Some(verity_extension(&answer))),
                ],
                AnswerEvent::Error { code, message } => {
                    let error =
                        json!({"error": {"code": code, "message": message, "details": null}});
                    vec![Bytes::from(format!("data: {error}\n\n"))]
                }
                AnswerEvent::Done(_) => return None,
                AnswerEvent::Sources(_) | AnswerEvent::Delta(_) => continue,
            };
            return Some((futures_util::stream::iter(chunks), (events, chunk)));
        }
    })
    .flatten();
    let body = futures_util::stream::once(async move { role })
        .chain(answer)
        .chain(futures_util::stream::once(async {
            Bytes::from_static(b"data: [DONE]\n\n")
        }))
        .map(Ok::<_, Infallible>);
    let body = crate::sse::with_heartbeat(body, HEARTBEAT_EVERY);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// `POST /generate {"prompt"}`: the seed's simple API, answered like `/v1/query`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    prompt: String,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    mode: Option<RetrievalMode>,
}

#[utoipa::path(
    post,
    path = "/generate",
    tag = "answers",
    summary = "Ask a question (simple form)",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The answer", body = Answer),
        (status = 400, description = "Invalid request", body = crate::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn generate(
    Authenticated(caller): Authenticated,
    service: web::Data<dyn AnswerService>,
    slots: web::Data<QuerySlots>,
    request: web::Json<GenerateRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = request.into_inner();
    let query = QueryRequest {
        question: request.prompt,
        collection: request.collection,
        top_k: request.top_k,
        mode: request.mode,
        filter: None,
        stream: false,
    };
    let events = start_answer(&slots, service.get_ref(), &caller, query).await?;
    let (answer, _) = collect_answer(events).await?;
    Ok(HttpResponse::Ok().json(answer))
}
