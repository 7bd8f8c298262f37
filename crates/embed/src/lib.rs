//! Dense embeddings: fastembed running an ONNX sentence-embedding model on ONNX Runtime, which
//! is loaded at run time from a shared library (the PyPI `onnxruntime` wheel's
//! `libonnxruntime.so`), so nothing is downloaded and no C++ toolchain is needed to build.
//!
//! Key decision: the model is always a local directory ("user-defined" in fastembed's words);
//! Verity never lets a library fetch weights at run time. Models are known by name
//! ([`MODELS`]): each brings its file, input prefixes, length and abstention threshold.

mod fastembed_embedder;
mod locate;
mod models;

pub use fastembed_embedder::{EmbedderConfig, FastEmbedder};
pub use locate::{find_model_dir, find_onnxruntime, repo_root_candidates};
pub use models::{DEFAULT_MODEL, MODELS, ModelSpec, model_spec};
