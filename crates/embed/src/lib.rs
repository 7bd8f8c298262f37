//! Dense embeddings: fastembed running an ONNX sentence-embedding model on ONNX Runtime, which
//! is loaded at run time from a shared library (the PyPI `onnxruntime` wheel's
//! `libonnxruntime.so`), so nothing is downloaded and no C++ toolchain is needed to build.
//!
//! Key decision: the model is always a local directory ("user-defined" in fastembed's words);
//! Verity never lets a library fetch weights at run time.

mod fastembed_embedder;
mod locate;

pub use fastembed_embedder::{EmbedderConfig, FastEmbedder};
pub use locate::{DEFAULT_MODEL_NAME, find_model_dir, find_onnxruntime, repo_root_candidates};
