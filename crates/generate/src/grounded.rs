//! From retrieved passages to a verified answer, as a stream of events: the abstention gate,
//! admission control, the grounded prompt, generation, sanitizing, verification, and the
//! extractive fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use verity_core::{
    Answer, AnswerEvent, AnswerStream, Citation, Grounding, GroundingStatus, RetrievedChunk,
    Timings, VerityError, VerityResult, detect_language,
};

use crate::extractive::{ExtractiveAnswerer, abstention_message, citation};
use crate::generator::{GenerationError, GenerationParams, GenerationStats, Generator};
use crate::metrics::METRICS;
use crate::prompt::build_prompt;
use crate::sanitize::{StreamSanitizer, sanitize};
use crate::verify::{SourceEvidence, verify};

#[derive(Debug, Clone, Copy)]
pub struct AnswerConfig {
    pub params: GenerationParams,
    /// See [`crate::verify`]: the share of a sentence's words its cited sources must contain.
    pub min_support: f32,
    /// Longest a request may wait for a slot plus generate; past it, the extractive answer.
    pub timeout: Duration,
    /// Generations running at once.
    pub max_concurrent: usize,
    /// Generations waiting for a slot; one more is refused with 429.
    pub max_queued: usize,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            params: GenerationParams::default(),
            min_support: crate::verify::DEFAULT_MIN_SUPPORT,
            timeout: Duration::from_secs(60),
            max_concurrent: 4,
            max_queued: 16,
        }
    }
}

/// Bounds the generations running (`max_concurrent` slots) and waiting (`max_queued`).
struct Admission {
    slots: Semaphore,
    /// Running plus waiting.
    outstanding: AtomicUsize,
    limit: usize,
    max_concurrent: usize,
    /// A moving average of generation times, for `Retry-After`.
    typical_ms: AtomicU64,
}

/// A place in the generation queue, taken before retrieval so that a request over capacity is
/// refused at once; released when dropped.
pub struct Ticket {
    admission: Option<Arc<Admission>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(admission) = &self.admission {
            admission.outstanding.fetch_sub(1, Ordering::SeqCst);
            METRICS.queued.set(admission.queued() as i64);
        }
    }
}

impl Admission {
    fn queued(&self) -> usize {
        self.outstanding
            .load(Ordering::SeqCst)
            .saturating_sub(self.max_concurrent - self.slots.available_permits())
    }

    fn record(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        let old = self.typical_ms.load(Ordering::Relaxed);
        let new = if old == 0 { ms } else { (old * 7 + ms) / 8 };
        self.typical_ms.store(new, Ordering::Relaxed);
    }

    /// Seconds until a slot is likely free: the queue ahead, drained at the typical pace.
    fn retry_after_secs(&self) -> u64 {
        let typical = self.typical_ms.load(Ordering::Relaxed).max(1000);
        let rounds = self.limit.div_ceil(self.max_concurrent.max(1)) as u64;
        (typical * rounds).div_ceil(1000).clamp(1, 60)
    }
}

/// Answers questions from passages, with a language model when one is configured.
pub struct Answerer {
    extractive: ExtractiveAnswerer,
    generator: Option<Arc<dyn Generator>>,
    admission: Arc<Admission>,
    config: AnswerConfig,
}

impl Answerer {
    pub fn new(
        extractive: ExtractiveAnswerer,
        generator: Option<Arc<dyn Generator>>,
        config: AnswerConfig,
    ) -> Self {
        let max_concurrent = config.max_concurrent.max(1);
        Self {
            extractive,
            generator,
            admission: Arc::new(Admission {
                slots: Semaphore::new(max_concurrent),
                outstanding: AtomicUsize::new(0),
                limit: max_concurrent + config.max_queued,
                max_concurrent,
                typical_ms: AtomicU64::new(0),
            }),
            config,
        }
    }

    pub fn extractive(&self) -> &ExtractiveAnswerer {
        &self.extractive
    }

    /// `extractive`, or the language model's name.
    pub fn generator_name(&self) -> String {
        self.generator
            .as_ref()
            .map_or_else(|| "extractive".to_string(), |g| g.name())
    }

    /// Takes a place in the generation queue, or refuses with [`VerityError::Busy`] when the
    /// queue is full. Without a language model there is nothing to queue for.
    pub fn admit(&self) -> VerityResult<Ticket> {
        if self.generator.is_none() {
            return Ok(Ticket { admission: None });
        }
        let admission = &self.admission;
        let taken = admission
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < admission.limit).then_some(n + 1)
            });
        if taken.is_err() {
            METRICS.rejected.inc();
            let retry_after_secs = admission.retry_after_secs();
            return Err(VerityError::Busy {
                message: format!(
                    "all {} answer slots are busy and {} requests are waiting; retry in {retry_after_secs} s",
                    admission.max_concurrent, self.config.max_queued
                ),
                retry_after_secs,
            });
        }
        METRICS.queued.set(admission.queued() as i64);
        Ok(Ticket {
            admission: Some(admission.clone()),
        })
    }

    /// Answers `question` from `passages` (best first) in the background; the events come
    /// through the returned stream. `timings` holds the retrieval times so far and `started`
    /// when the request began.
    pub fn start(
        self: &Arc<Self>,
        ticket: Ticket,
        question: String,
        passages: Vec<RetrievedChunk>,
        timings: Timings,
        started: Instant,
    ) -> AnswerStream {
        let (events, stream) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            let mut run = Run {
                events,
                timings,
                started,
                streamed_text: false,
                prompt_hash: None,
            };
            // An error here means the client went away; the generation has been dropped.
            let _ = this.run(&mut run, ticket, &question, &passages).await;
        });
        stream
    }

    async fn run(
        &self,
        run: &mut Run,
        ticket: Ticket,
        question: &str,
        passages: &[RetrievedChunk],
    ) -> Result<(), Gone> {
        let language = detect_language(question);
        let generator = match &self.generator {
            Some(g)
                if self
                    .extractive
                    .abstention_reason(question, passages)
                    .is_none() =>
            {
                g
            }
            // No model, or evidence too weak to ask one: the spine's answer.
            _ => {
                drop(ticket);
                let mut answer = self.extractive.answer(question, passages);
                answer.generator = "extractive".to_string();
                run.send(AnswerEvent::Sources(answer.citations.clone()))
                    .await?;
                run.send(AnswerEvent::Delta(answer.answer.clone())).await?;
                return run.finish(answer).await;
            }
        };

        let window = generator.context_window();
        let prompt = build_prompt(
            question,
            language,
            passages,
            window,
            self.config.params.max_tokens,
            &|text| generator.count_tokens(text),
        );
        run.prompt_hash = Some(prompt_hash(&prompt.messages));
        let given = &passages[..prompt.sources];
        let citations: Vec<Citation> = given
            .iter()
            .enumerate()
            .map(|(i, p)| citation(i, p))
            .collect();
        run.send(AnswerEvent::Sources(citations.clone())).await?;
        if given.is_empty() {
            let reason = format!(
                "the model's context window ({window} tokens) leaves no room for any source"
            );
            return self.fall_back(run, question, passages, reason).await;
        }

        let deadline = run.started + self.config.timeout;
        let slot =
            match tokio::time::timeout_at(deadline.into(), self.admission.slots.acquire()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    let reason = format!(
                        "no language-model slot came free within {:?}",
                        self.config.timeout
                    );
                    return self.fall_back(run, question, passages, reason).await;
                }
            };
        METRICS.in_flight.inc();
        METRICS.queued.set(self.admission.queued() as i64);
        let generated = self
            .generate(run, generator.as_ref(), &prompt.messages, deadline)
            .await;
        METRICS.in_flight.dec();
        drop(slot);
        drop(ticket);

        let (raw, stats) = match generated {
            Ok(done) => done,
            Err(GenerateFailure::Gone) => return Err(Gone),
            Err(GenerateFailure::Failed(error)) => {
                tracing::warn!(%error, generator = %generator.name(), "generation failed; answering extractively");
                let reason = public_reason(&error);
                return self.fall_back(run, question, passages, reason).await;
            }
        };
        self.admission.record(stats.total);
        if let Some(first) = stats.first_token {
            METRICS.first_token_seconds.observe(first.as_secs_f64());
            run.timings.first_token_ms = ms(first);
        }
        if let Some(speed) = stats.decode_tokens_per_second() {
            METRICS.decode_tokens_per_second.observe(speed);
        }
        run.timings.generate_ms = ms(stats.total);

        let evidence: Vec<SourceEvidence> = given.iter().map(SourceEvidence::new).collect();
        let verification = verify(&sanitize(&raw), &evidence, self.config.min_support);
        let removed = verification.unsupported.len();
        let (status, text, reason) = if verification.supported == 0 {
            let reason = if removed == 0 {
                "the model wrote no answer".to_string()
            } else {
                format!(
                    "none of the {removed} sentences the model wrote is supported by the sources it cites"
                )
            };
            (
                GroundingStatus::Abstained,
                abstention_message(language, true).to_string(),
                reason,
            )
        } else if removed > 0 {
            (
                GroundingStatus::Partial,
                verification.text,
                format!(
                    "{removed} unsupported sentence(s) removed; {} kept, each supported by the source it cites",
                    verification.supported
                ),
            )
        } else {
            (
                GroundingStatus::Grounded,
                verification.text,
                format!(
                    "every sentence is supported by the source it cites ({})",
                    verification
                        .cited
                        .iter()
                        .map(|n| format!("[{n}]"))
                        .collect::<String>()
                ),
            )
        };
        let answer = Answer {
            answer: text,
            citations,
            grounding: Grounding {
                status,
                unsupported: verification.unsupported,
                reason: Some(reason),
            },
            generator: generator.name(),
            id: String::new(),
            prompt_hash: None,
        };
        run.finish(answer).await
    }

    /// Generates, streaming sanitized text as `Delta` events; returns the raw text.
    async fn generate(
        &self,
        run: &mut Run,
        generator: &dyn Generator,
        messages: &[crate::generator::ChatMessage],
        deadline: Instant,
    ) -> Result<(String, GenerationStats), GenerateFailure> {
        let (tokens, received) = mpsc::channel::<String>(64);
        let params = self.config.params;
        let generation = generator.generate(messages, params, tokens);
        // `forward` owns the receiver: when it stops early (the client left) the receiver is
        // dropped with it, the generator's next send fails, and the generation ends.
        let forward = async move {
            let mut received = received;
            let mut raw = String::new();
            let mut sanitizer = StreamSanitizer::default();
            while let Some(piece) = received.recv().await {
                raw.push_str(&piece);
                let clean = sanitizer.push(&piece);
                if !clean.is_empty() {
                    run.send(AnswerEvent::Delta(clean)).await?;
                }
            }
            let rest = sanitizer.finish();
            if !rest.is_empty() {
                run.send(AnswerEvent::Delta(rest)).await?;
            }
            Ok::<String, Gone>(raw)
        };
        let both = async { tokio::join!(generation, forward) };
        match tokio::time::timeout_at(deadline.into(), both).await {
            Err(_) => Err(GenerateFailure::Failed(GenerationError::Timeout(
                self.config.timeout,
            ))),
            Ok((_, Err(Gone))) | Ok((Err(GenerationError::Cancelled), _)) => {
                Err(GenerateFailure::Gone)
            }
            Ok((Err(error), Ok(_))) => Err(GenerateFailure::Failed(error)),
            Ok((Ok(stats), Ok(raw))) => Ok((raw, stats)),
        }
    }

    async fn fall_back(
        &self,
        run: &mut Run,
        question: &str,
        passages: &[RetrievedChunk],
        reason: String,
    ) -> Result<(), Gone> {
        let mut answer = self.extractive.answer(question, passages);
        if answer.grounding.status == GroundingStatus::Grounded {
            answer.grounding = Grounding::new(
                GroundingStatus::Fallback,
                format!("{reason}; this answer quotes the passages directly"),
            );
        }
        answer.generator = "extractive".to_string();
        let separator = if run.streamed_text { "\n\n" } else { "" };
        run.send(AnswerEvent::Delta(format!("{separator}{}", answer.answer)))
            .await?;
        run.finish(answer).await
    }
}

/// The client stopped reading the answer.
struct Gone;

/// What a caller is told about a failed generation. The engine's own message stays in the
/// server's log: it can hold the engine's address (with a password in it), its internals, or
/// text an attacker had it echo.
fn public_reason(error: &GenerationError) -> String {
    match error {
        GenerationError::Timeout(limit) => {
            format!("the language model did not finish within {limit:?}")
        }
        GenerationError::Engine {
            transient: true, ..
        } => "the language model failed: its engine is unavailable or overloaded \
              (the server's log says more)"
            .to_string(),
        GenerationError::Engine { .. } | GenerationError::Cancelled => {
            "the language model failed: its engine refused the request (the server's log says more)"
                .to_string()
        }
    }
}

enum GenerateFailure {
    Gone,
    Failed(GenerationError),
}

/// One request's event channel and clock.
struct Run {
    events: mpsc::Sender<AnswerEvent>,
    timings: Timings,
    started: Instant,
    /// Whether any `Delta` went out.
    streamed_text: bool,
    /// Of the prompt the model was given, once it was built (for the answer's trace).
    prompt_hash: Option<String>,
}

impl Run {
    async fn send(&mut self, event: AnswerEvent) -> Result<(), Gone> {
        if matches!(&event, AnswerEvent::Delta(text) if !text.is_empty()) {
            self.streamed_text = true;
        }
        self.events.send(event).await.map_err(|_| Gone)
    }

    async fn finish(&mut self, mut answer: Answer) -> Result<(), Gone> {
        answer.prompt_hash = self.prompt_hash.take();
        METRICS
            .answers
            .with_label_values(&[answer.grounding.status.as_str()])
            .inc();
        self.timings.total_ms = ms(self.started.elapsed());
        self.send(AnswerEvent::Grounding(answer)).await?;
        self.send(AnswerEvent::Done(self.timings)).await
    }
}

/// SHA-256 of the messages as the model reads them: role and content of each, in order.
fn prompt_hash(messages: &[crate::generator::ChatMessage]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for message in messages {
        hasher.update(message.role.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(message.content.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
