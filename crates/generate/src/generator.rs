//! The seam between Verity and a language model: chat messages in, streamed text out.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::mpsc;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// How much a generation may write, and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationParams {
    pub max_tokens: usize,
    /// 0 = greedy decoding: the same sources give the same answer, which makes answers
    /// reproducible and their traces comparable.
    pub temperature: f32,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: 0.0,
        }
    }
}

/// What a finished generation reports beside its text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// From the call to the first streamed text.
    pub first_token: Option<Duration>,
    /// From the call to the end of generation.
    pub total: Duration,
}

impl GenerationStats {
    /// Decode speed: tokens after the first, over the time after the first token.
    pub fn decode_tokens_per_second(&self) -> Option<f64> {
        let first = self.first_token?;
        let decode = self.total.checked_sub(first)?.as_secs_f64();
        (self.completion_tokens > 1 && decode > 0.0)
            .then(|| (self.completion_tokens - 1) as f64 / decode)
    }
}

/// Where a backend sends its text: passes each piece on and keeps the statistics every backend
/// reports the same way (time to first text, pieces as a stand-in for tokens when the engine
/// does not count them).
#[derive(Debug)]
pub struct TextSink {
    output: mpsc::Sender<String>,
    started: std::time::Instant,
    pieces: usize,
    /// Token counts the engine reported; `finish` fills in the rest.
    pub stats: GenerationStats,
}

impl TextSink {
    /// Starts the clock: call it when the request goes to the engine.
    pub fn new(output: mpsc::Sender<String>) -> Self {
        Self {
            output,
            started: std::time::Instant::now(),
            pieces: 0,
            stats: GenerationStats::default(),
        }
    }

    /// Passes a piece of text on (empty pieces are skipped). Fails with
    /// [`GenerationError::Cancelled`] when the reader is gone: the backend should stop.
    pub async fn send(&mut self, text: &str) -> Result<(), GenerationError> {
        if text.is_empty() {
            return Ok(());
        }
        let started = self.started;
        self.stats
            .first_token
            .get_or_insert_with(|| started.elapsed());
        self.pieces += 1;
        self.output
            .send(text.to_string())
            .await
            .map_err(|_| GenerationError::Cancelled)
    }

    /// The generation's statistics, now that it has ended.
    pub fn finish(mut self) -> GenerationStats {
        if self.stats.completion_tokens == 0 {
            self.stats.completion_tokens = self.pieces;
        }
        self.stats.total = self.started.elapsed();
        self.stats
    }
}

#[derive(Debug, Error)]
pub enum GenerationError {
    /// The receiver of the streamed text went away (the client disconnected).
    #[error("generation cancelled: nobody is reading the answer any more")]
    Cancelled,
    /// The engine could not be reached or answered with an error; `transient` says whether a
    /// retry might succeed.
    #[error("{message}")]
    Engine { message: String, transient: bool },
    #[error(
        "the language model did not finish within {:?} (generation.timeout_seconds; 0 derives it \
         from the model's speed measured at load); raise it, lower generation.max_tokens, or use \
         a faster model",
        .0
    )]
    Timeout(Duration),
}

impl GenerationError {
    pub fn engine(message: impl Into<String>) -> Self {
        GenerationError::Engine {
            message: message.into(),
            transient: false,
        }
    }
}

/// A language model that writes an answer from chat messages.
#[async_trait]
pub trait Generator: Send + Sync {
    /// Names the backend and model in answers and traces: `mistralrs:NAME`, `openai:MODEL`.
    fn name(&self) -> String;

    /// The model's context window in tokens: prompt and answer must fit in it together.
    fn context_window(&self) -> usize;

    /// Counts the tokens `text` takes in this model's prompt. The default overestimates
    /// (three characters per token, where real tokenizers average about four for English and
    /// Spanish) so that a prompt cut by it always fits.
    fn count_tokens(&self, text: &str) -> usize {
        text.chars().count().div_ceil(3)
    }

    /// How long prefilling `prompt_tokens` and then writing `answer_tokens` takes on this
    /// machine, when the backend has measured its speed (a local model does when loaded);
    /// `None`: unknown.
    fn expected_duration(&self, prompt_tokens: usize, answer_tokens: usize) -> Option<Duration> {
        let _ = (prompt_tokens, answer_tokens);
        None
    }

    /// Generates an answer, sending the text through `output` as it is produced. Stops early,
    /// with [`GenerationError::Cancelled`], when `output`'s receiver is dropped.
    async fn generate(
        &self,
        messages: &[ChatMessage],
        params: GenerationParams,
        output: mpsc::Sender<String>,
    ) -> Result<GenerationStats, GenerationError>;
}
