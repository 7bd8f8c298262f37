//! From retrieved passages to a verified answer, as a stream of events: the abstention gate,
//! admission control, the grounded prompt, generation, sanitizing, verification, and the
//! extractive fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use verity_core::{
    Answer, AnswerEvent, AnswerStream, Citation, Grounding, GroundingStatus, Language,
    RetrievedChunk, Timings, VerityError, VerityResult, detect_language,
};

use crate::extractive::{ExtractiveAnswerer, abstention_message, citation};
use crate::generator::{GenerationError, GenerationParams, GenerationStats, Generator};
use crate::metrics::METRICS;
use crate::no_answer::model_abstention_message;
use crate::prompt::build_prompt;
use crate::sanitize::{StreamSanitizer, sanitize};
use crate::verify::{SourceEvidence, Verification, verify_in};

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
        let verification = verify_in(
            &sanitize(&raw),
            language,
            &evidence,
            self.config.min_support,
        );
        let answer = grounded_answer(verification, citations, language, generator.name());
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

/// The answer from a verified generation: its status, text and citations.
fn grounded_answer(
    verification: Verification,
    given: Vec<Citation>,
    language: Language,
    generator: String,
) -> Answer {
    let removed = verification.unsupported.len();
    let changed = verification.attributed.len();
    let (status, text, reason, citations) = if verification.supported == 0 {
        let reason = if let Some(said) = verification.no_answer.first() {
            format!("the model said the sources do not answer the question: \"{said}\"")
        } else if removed == 0 {
            "the model wrote no answer".to_string()
        } else {
            format!(
                "none of the {removed} sentences the model wrote is supported by any of the sources given"
            )
        };
        let text = if verification.no_answer.is_empty() {
            abstention_message(language, true)
        } else {
            model_abstention_message(language)
        };
        // An abstention lists the nearest passages, as the gate's does.
        (GroundingStatus::Abstained, text.to_string(), reason, given)
    } else {
        let attribution = if changed == 0 {
            String::new()
        } else {
            format!("; Verity set the citation of {changed} of them")
        };
        let cited = verification
            .cited
            .iter()
            .map(|n| format!("[{n}]"))
            .collect::<String>();
        let (status, reason) = if removed > 0 {
            (
                GroundingStatus::Partial,
                format!(
                    "{removed} sentence(s) no source supports removed; {} kept, each supported by the source it cites ({cited}){attribution}",
                    verification.supported
                ),
            )
        } else {
            (
                GroundingStatus::Grounded,
                format!(
                    "every sentence is supported by the source it cites ({cited}){attribution}"
                ),
            )
        };
        // Only the passages a kept sentence cites, with the numbers its markers use.
        let citations = given
            .into_iter()
            .filter(|c| verification.cited.contains(&c.id))
            .collect();
        (status, verification.text, reason, citations)
    };
    Answer {
        answer: text,
        citations,
        grounding: Grounding {
            status,
            unsupported: verification.unsupported,
            attributed: verification.attributed,
            reason: Some(reason),
        },
        generator,
        id: String::new(),
        prompt_hash: None,
    }
}

/// The client stopped reading the answer.
struct Gone;

/// What a caller is told about a failed generation. The engine's own message stays in the
/// server's log: it can hold the engine's address (with a password in it), its internals, or
/// text an attacker had it echo.
fn public_reason(error: &GenerationError) -> String {
    match error {
        // Says only the deadline and the settings that set it.
        GenerationError::Timeout(_) => error.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> RetrievedChunk {
        RetrievedChunk {
            chunk_id: "c".into(),
            document_id: "d".into(),
            collection: "default".into(),
            title: "Vacaciones".into(),
            source: "/kb/x.md".into(),
            start: 0,
            end: text.chars().count(),
            text: text.into(),
            heading_path: vec![],
            page: None,
            score: 0.5,
            similarity: 0.5,
        }
    }

    fn answer_for(generated: &str, passages: &[&str], language: Language) -> Answer {
        let passages: Vec<RetrievedChunk> = passages.iter().map(|p| passage(p)).collect();
        let evidence: Vec<SourceEvidence> = passages.iter().map(SourceEvidence::new).collect();
        let given = passages
            .iter()
            .enumerate()
            .map(|(i, p)| citation(i, p))
            .collect();
        let verification = verify_in(
            generated,
            language,
            &evidence,
            crate::verify::DEFAULT_MIN_SUPPORT,
        );
        grounded_answer(verification, given, language, "test".into())
    }

    #[test]
    fn a_model_saying_the_sources_do_not_answer_abstains_in_english() {
        let answer = answer_for(
            "The sources do not say how many days can be carried over.",
            &["Employees receive 20 working days of annual leave."],
            Language::English,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(answer.grounding.unsupported.is_empty());
        assert_eq!(answer.answer, model_abstention_message(Language::English));
        assert!(
            answer
                .grounding
                .reason
                .unwrap()
                .contains("\"The sources do not say how many days can be carried over.\"")
        );
        assert_eq!(answer.citations.len(), 1, "the nearest passages are listed");
    }

    #[test]
    fn a_model_saying_the_sources_do_not_answer_abstains_in_spanish() {
        let answer = answer_for(
            "No se menciona cuántos días se pueden acumular.",
            &["Cada empleado tiene 30 días corridos de vacaciones."],
            Language::Spanish,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(
            answer
                .answer
                .starts_with("Las fuentes encontradas no responden")
        );
        assert!(answer.grounding.reason.unwrap().contains("No se menciona"));
    }

    #[test]
    fn a_model_saying_the_sources_do_not_answer_abstains_in_portuguese() {
        // Beside an unsupported claim, the model's abstention still decides: not `partial`.
        let answer = answer_for(
            "Não há informação sobre a venda de férias nas fontes. Talvez seja possível vender dez dias [1].",
            &["São 30 dias corridos de férias por ano."],
            Language::Portuguese,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Abstained);
        assert!(
            answer
                .answer
                .starts_with("As fontes encontradas não respondem")
        );
        assert_eq!(answer.grounding.unsupported.len(), 1);
    }

    #[test]
    fn a_partial_answer_keeps_what_is_supported_and_notes_what_the_sources_lack() {
        let answer = answer_for(
            "Employees receive 20 working days of annual leave [1]. The sources do not say whether unused days are paid out.",
            &[
                "Employees receive 20 working days of annual leave.",
                "Meals are reimbursed up to 45 euros per day.",
            ],
            Language::English,
        );
        assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
        assert!(
            answer
                .answer
                .ends_with("do not say whether unused days are paid out.")
        );
        // Only the passage a kept sentence cites.
        assert_eq!(answer.citations.len(), 1);
        assert_eq!(answer.citations[0].id, 1);
    }
}
