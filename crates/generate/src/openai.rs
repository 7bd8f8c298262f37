//! A language model behind an OpenAI-compatible chat-completions endpoint: vLLM, a mistral.rs
//! server, TGI, Ollama, or OpenAI itself.
//!
//! Key decisions: answers are streamed (`"stream": true`) so the first words reach the client
//! while the engine still decodes; transient failures (connection refused, 429, 5xx) are retried
//! a bounded number of times with backoff, but only before any text was sent on, so a client
//! never sees text twice.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::generator::{
    ChatMessage, GenerationError, GenerationParams, GenerationStats, Generator, TextSink,
};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API root, e.g. `http://127.0.0.1:8000/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// The served model's context window in tokens.
    pub context_window: usize,
    /// Stream the answer (`"stream": true`); off for engines that cannot.
    pub stream: bool,
    pub connect_timeout: Duration,
    /// Longest silence between two pieces of a response before the attempt fails.
    pub read_timeout: Duration,
    /// Retries after a transient failure, before any text was received.
    pub max_retries: u32,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            context_window: 8192,
            stream: true,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            max_retries: 2,
        }
    }
}

pub struct OpenAiGenerator {
    client: reqwest::Client,
    url: String,
    config: OpenAiConfig,
}

/// `url` without the user name and password it may carry (`http://user:secret@host/…`), for
/// messages.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

impl OpenAiGenerator {
    pub fn new(config: OpenAiConfig) -> Result<Self, GenerationError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(GenerationError::engine(format!(
                "the OpenAI-compatible base URL {:?} must start with http:// or https:// \
                 (e.g. http://127.0.0.1:8000/v1)",
                config.base_url
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|e| GenerationError::engine(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            url: format!("{base}/chat/completions"),
            config,
        })
    }

    fn body(&self, messages: &[ChatMessage], params: GenerationParams) -> Value {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": self.config.stream,
        });
        if self.config.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    /// Sends the request; retries transient failures with exponential backoff (honouring a
    /// short `Retry-After`).
    async fn send(&self, body: &Value) -> Result<reqwest::Response, GenerationError> {
        let mut attempt = 0;
        loop {
            let mut request = self.client.post(&self.url).json(body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    (
                        GenerationError::Engine {
                            message: format!(
                                "the engine at {} answered {status}: {}",
                                without_credentials(&self.url),
                                error_message(&text)
                            ),
                            transient,
                        },
                        retry_after,
                    )
                }
                Err(e) => (
                    GenerationError::Engine {
                        message: format!(
                            "cannot reach the engine at {}: {}",
                            without_credentials(&self.url),
                            without_credentials(&e.to_string())
                        ),
                        transient: e.is_connect() || e.is_timeout(),
                    },
                    None,
                ),
            };
            let (error, retry_after) = error;
            let transient = matches!(
                error,
                GenerationError::Engine {
                    transient: true,
                    ..
                }
            );
            if !transient || attempt >= self.config.max_retries {
                return Err(error);
            }
            let backoff = Duration::from_millis(200 * 2u64.pow(attempt));
            let wait = retry_after
                .filter(|d| *d <= Duration::from_secs(5))
                .unwrap_or(backoff);
            tracing::warn!(attempt, ?wait, %error, "retrying the language model request");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The `error.message` of an OpenAI-style error body, or the body itself (shortened).
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[async_trait]
impl Generator for OpenAiGenerator {
    fn name(&self) -> String {
        format!("openai:{}", self.config.model)
    }

    fn context_window(&self) -> usize {
        self.config.context_window
    }

    async fn generate(
        &self,
        messages: &[ChatMessage],
        params: GenerationParams,
        output: mpsc::Sender<String>,
    ) -> Result<GenerationStats, GenerationError> {
        let mut sink = TextSink::new(output);
        let response = self.send(&self.body(messages, params)).await?;

        if !self.config.stream {
            let body: Value = response.json().await.map_err(|e| {
                GenerationError::engine(format!("the engine's answer is not JSON: {e}"))
            })?;
            let text = body
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    GenerationError::engine("the engine's answer has no choices[0].message.content")
                })?;
            read_usage(&body, &mut sink.stats);
            sink.send(text).await?;
            return Ok(sink.finish());
        }

        let mut bytes = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| {
                GenerationError::engine(format!("the engine's stream broke off: {e}"))
            })?;
            buffer.extend_from_slice(&chunk);
            while let Some(event) = take_event(&mut buffer) {
                let Some(data) = event_data(&event) else {
                    continue;
                };
                if data == "[DONE]" {
                    return Ok(sink.finish());
                }
                let value: Value = serde_json::from_str(&data).map_err(|e| {
                    GenerationError::engine(format!(
                        "the engine sent an event that is not JSON: {e}"
                    ))
                })?;
                if let Some(error) = value.get("error") {
                    return Err(GenerationError::engine(format!(
                        "the engine failed mid-answer: {}",
                        error_message(&error.to_string())
                    )));
                }
                read_usage(&value, &mut sink.stats);
                let text = value
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                sink.send(text).await?;
            }
        }
        Err(GenerationError::engine(
            "the engine's stream ended without [DONE]",
        ))
    }
}

fn read_usage(value: &Value, stats: &mut GenerationStats) {
    if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
        let get = |key: &str| usage.get(key).and_then(Value::as_u64).map(|n| n as usize);
        stats.prompt_tokens = get("prompt_tokens").unwrap_or(stats.prompt_tokens);
        stats.completion_tokens = get("completion_tokens").unwrap_or(stats.completion_tokens);
    }
}

/// Removes the first complete Server-Sent Event (up to a blank line) from `buffer`.
fn take_event(buffer: &mut Vec<u8>) -> Option<String> {
    let (end, separator) = [b"\r\n\r\n".as_slice(), b"\n\n".as_slice()]
        .iter()
        .filter_map(|sep| {
            buffer
                .windows(sep.len())
                .position(|w| w == *sep)
                .map(|p| (p, sep.len()))
        })
        .min()?;
    let event = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end + separator);
    Some(event)
}

/// The joined `data:` lines of an event (comments and other fields ignored).
fn event_data(event: &str) -> Option<String> {
    let lines: Vec<&str> = event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_in_either_line_ending() {
        let mut buffer = b"data: {\"a\":1}\n\n: keep-alive\r\n\r\ndata: [DO".to_vec();
        assert_eq!(take_event(&mut buffer).as_deref(), Some("data: {\"a\":1}"));
        let comment = take_event(&mut buffer).unwrap();
        assert_eq!(event_data(&comment), None);
        assert_eq!(take_event(&mut buffer), None);
        buffer.extend_from_slice(b"NE]\n\n");
        assert_eq!(
            event_data(&take_event(&mut buffer).unwrap()).as_deref(),
            Some("[DONE]")
        );
    }

    #[test]
    fn credentials_in_the_engine_url_never_reach_a_message() {
        assert_eq!(
            without_credentials("http://verity:s3cret@10.0.0.5:8000/v1/chat/completions"),
            "http://***@10.0.0.5:8000/v1/chat/completions"
        );
        assert_eq!(
            without_credentials("https://engine.lan/v1/x@y"),
            "https://engine.lan/v1/x@y"
        );
    }

    #[test]
    fn a_base_url_without_scheme_is_refused_with_an_example() {
        let err = OpenAiGenerator::new(OpenAiConfig::new("127.0.0.1:8000/v1", "m"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http://127.0.0.1:8000/v1"));
    }
}
