//! End-to-end tests of the embedded default: the real model (fastembed on ONNX Runtime),
//! SQLite through sqlx, a Qdrant Edge shard on disk, the HTTP server on a random port, and the
//! `verity` binary itself. One test binary, so everything links once.

mod access;
mod cli;
mod compat;
mod crash;
mod deploy;
mod documents;
mod eval_answers;
mod generation;
mod helpers;
mod http;
mod ingest;
mod integrity;
mod isolation;
mod jobs;
mod knowledge;
mod llama_server;
mod logs;
mod oidc;
mod postgres;
// SmolLM2 through mistral.rs: needs the engine (the default feature `mistralrs`).
#[cfg(feature = "mistralrs")]
mod real_model;
mod tls;
mod workers;
