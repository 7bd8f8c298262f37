//! Answers from retrieved passages. The spine's answerer is extractive: it quotes the sentences
//! of the retrieved passages that best match the question, each with its `[n]` citation, so
//! every sentence of an answer is grounded by construction.
//!
//! Key decision: the abstention gate runs before any answer is composed. When the best passage
//! is not similar enough to the question (a threshold calibrated on SQuAD), Verity says it found
//! no support and lists the nearest passages instead of guessing.

mod extractive;
mod terms;

pub use extractive::{
    DEFAULT_ABSTAIN_BELOW, DEFAULT_MAX_SENTENCES, DEFAULT_MIN_TERM_COVERAGE, ExtractiveAnswerer,
    ExtractiveConfig,
};
pub use terms::term_coverage;
