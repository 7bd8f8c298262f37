//! The in-process language model: a local model directory run by mistral.rs, on CPU, or on a
//! GPU when built with `--features cuda`.
//!
//! Key decisions:
//! - Local files only: the token source is `None` and the model id is a directory, so loading
//!   never touches the network (an air-gapped server works, and a typo fails loudly instead of
//!   downloading something else).
//! - Its own crate: mistral.rs is the heaviest dependency of the workspace, and the crates
//!   that do not need it build without it. The engine itself is behind the `engine` feature
//!   (`verity-cli`'s default feature `mistralrs` turns it on): without it the settings' types
//!   stay and loading a model says how to get a build that can.

mod random_model;

use std::path::PathBuf;

#[cfg(feature = "engine")]
mod engine;
#[cfg(feature = "engine")]
pub use engine::MistralRsGenerator;
#[cfg(not(feature = "engine"))]
mod absent;
#[cfg(not(feature = "engine"))]
pub use absent::MistralRsGenerator;

pub use random_model::{LlamaShape, write_random_llama};

/// In-situ quantisation of the weights as they load: 8-bit weights take a quarter of the
/// memory of 32-bit ones (half of 16-bit), 4-bit an eighth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    None,
    Q8,
    Q4,
}

/// The type activations (and the KV cache) are computed in; quantised weights keep their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationDtype {
    /// F32 on CPU; mistral.rs's choice on a GPU (BF16 or F16, whichever the device supports).
    /// mistral.rs's own choice on CPU is a half type, whose CPU kernels convert every element:
    /// F32 is faster there (docs/benchmarks.md, "Language models on CPU").
    Auto,
    F32,
    Bf16,
    F16,
}

#[derive(Debug, Clone)]
pub struct MistralRsConfig {
    /// A directory with `config.json`, `tokenizer.json`, `tokenizer_config.json` and
    /// safetensors weights, or with one `.gguf` file (plus `tokenizer_config.json` for its chat
    /// template, if the GGUF file lacks one).
    pub model_dir: PathBuf,
    pub quantization: Quantization,
    /// Paged attention (a CUDA feature of mistral.rs); ignored in CPU builds.
    pub paged_attention: bool,
    /// Sequences decoded together in one batch.
    pub max_batch: usize,
    /// Run on CPU even in a CUDA build.
    pub force_cpu: bool,
    pub dtype: ActivationDtype,
    /// Time a short generation after loading, so that [`Generator::expected_duration`] can
    /// say how long an answer takes on this machine (a deadline derived from it fits the model).
    pub measure_speed: bool,
}

impl MistralRsConfig {
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            quantization: Quantization::None,
            paged_attention: true,
            max_batch: 16,
            force_cpu: false,
            dtype: ActivationDtype::Auto,
            measure_speed: false,
        }
    }
}

/// Tokens per second measured on this machine right after loading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
}
