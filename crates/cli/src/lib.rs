//! The `verity` binary's library: settings, the assembled service ([`app::Verity`]), batch
//! ingestion, the SQuAD evaluation and the benchmarks. `main.rs` only parses arguments and
//! prints; everything here is usable from tests.

pub mod app;
pub mod bench;
pub mod bench_generate;
pub mod eval;
pub mod pipeline;
pub mod reconcile;
pub mod settings;
pub mod worker;

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use verity_auth::KeyAuthenticator;
use verity_gateway::{Application, GatewayConfig, RateLimit};

use crate::app::Verity;

/// Builds the HTTP application for `verity` on an already bound listener.
pub fn build_server(verity: Arc<Verity>, listener: TcpListener) -> anyhow::Result<Application> {
    let settings = &verity.settings;
    let config = GatewayConfig {
        max_body_bytes: settings.server.max_body_bytes,
        workers: settings.server.workers,
        rate_limit: Some(RateLimit {
            per_minute: settings.auth.rate_limit_per_minute,
            burst: settings.auth.rate_limit_burst,
        }),
    };
    let authenticator = Arc::new(KeyAuthenticator::new(
        verity.store.clone(),
        settings.auth.mode,
    ));
    Application::build(listener, verity, authenticator, config)
        .context("cannot start the HTTP server")
}
