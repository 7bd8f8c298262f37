//! Answers from retrieved passages: an LLM writes from numbered sources and Verity checks what
//! it wrote before anyone sees it, or, without an LLM, the spine's extractive answerer quotes
//! the passages.
//!
//! Key decisions:
//! - The abstention gate runs before any model is asked: when the best passage is not similar
//!   enough to the question (a threshold calibrated on SQuAD), Verity says it found no support
//!   and lists the nearest passages instead of asking a model to answer from nothing.
//! - Model output is untrusted: it is sanitized to plain text ([`sanitize`]) and each sentence
//!   is verified against every source given ([`verify`]): the citations are Verity's finding
//!   (a missing or wrong marker is set right and reported in `grounding.attributed`), and
//!   sentences no source supports are removed and reported in `grounding.unsupported`.
//! - When the model says the sources do not answer, the answer is `abstained`.
//! - The model is behind the [`Generator`] trait: the OpenAI-compatible HTTP backend lives
//!   here, the in-process mistral.rs backend in `verity-mistralrs` (it is a heavy build).
//! - When the model fails or times out, the answer falls back to the extractive one and says
//!   so (`grounding.status = "fallback"`).

mod extractive;
mod generator;
mod grounded;
mod lexicon;
mod metrics;
mod no_answer;
mod openai;
mod prompt;
mod sanitize;
mod support;
mod terms;
mod verify;

pub use extractive::{
    DEFAULT_ABSTAIN_BELOW, DEFAULT_MAX_SENTENCES, DEFAULT_MIN_TERM_COVERAGE, ExtractiveAnswerer,
    ExtractiveConfig, GateSignals,
};
pub use generator::{
    ChatMessage, GenerationError, GenerationParams, GenerationStats, Generator, Role, TextSink,
};
pub use grounded::{AnswerConfig, Answerer, Ticket};
pub use metrics::{GenerationMetrics, METRICS};
pub use no_answer::no_answer_sentence;
pub use openai::{OpenAiConfig, OpenAiGenerator};
pub use prompt::{GroundedPrompt, build_prompt};
pub use sanitize::{StreamSanitizer, sanitize};
pub use terms::term_coverage;
pub use verify::{DEFAULT_MIN_SUPPORT, SourceEvidence, Verification, verify, verify_in};
