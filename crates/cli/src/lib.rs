//! The `verity` binary's library: settings, the wiring from settings to the service
//! ([`wiring::open`]; the use cases themselves are in `verity-service`) and the HTTP server's
//! assembly (the evaluations and benchmarks are in `verity-eval`). `main.rs` only parses
//! arguments and prints; everything here is usable from tests.

pub mod settings;
pub mod wiring;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use verity_auth::{
    AuthMode, BearerAuthenticator, JwksSource, OidcConfig, OidcValidator, parse_algorithm,
};
use verity_core::Authenticator;
use verity_gateway::{Application, GatewayConfig, OpenAccessGuard, RateLimit, Services, TlsFiles};

use verity_service::Verity;

use crate::settings::Settings;

pub use wiring::{enable_generation, open};

/// The authenticator `auth.mode` asks for (fetching the OIDC issuer's keys if needed).
pub async fn authenticator(
    settings: &Settings,
    verity: &Verity,
) -> anyhow::Result<BearerAuthenticator> {
    let auth = &settings.auth;
    let oidc = if auth.mode.accepts_oidc() {
        let o = &auth.oidc;
        let jwks = match (&o.jwks_url, &o.jwks_file) {
            (Some(url), _) => JwksSource::Url(url.clone()),
            (None, Some(file)) => JwksSource::File(file.clone()),
            (None, None) => anyhow::bail!(
                "auth.mode is {:?} but auth.oidc.jwks_url and auth.oidc.jwks_file are both empty: name the issuer's key set",
                auth.mode.as_str()
            ),
        };
        let (Some(issuer), Some(audience)) = (&o.issuer, &o.audience) else {
            anyhow::bail!(
                "auth.mode is {:?}: set auth.oidc.issuer and auth.oidc.audience (the iss and aud every token must carry)",
                auth.mode.as_str()
            );
        };
        let algorithms = o
            .algorithms
            .iter()
            .map(|a| parse_algorithm(a))
            .collect::<Result<Vec<_>, _>>()?;
        Some(
            OidcValidator::new(OidcConfig {
                issuer: issuer.clone(),
                audience: audience.clone(),
                jwks,
                groups_claim: o.groups_claim.clone(),
                algorithms,
            })
            .await?,
        )
    } else {
        None
    };
    Ok(BearerAuthenticator::new(
        verity.store().clone(),
        auth.mode,
        oidc,
    )?)
}

/// The gateway's settings, from Verity's.
pub fn gateway_config(settings: &Settings) -> GatewayConfig {
    let server = &settings.server;
    GatewayConfig {
        max_body_bytes: server.max_body_bytes,
        workers: server.workers,
        rate_limit: Some(RateLimit {
            per_minute: settings.auth.rate_limit_per_minute,
            burst: settings.auth.rate_limit_burst,
        }),
        tls: match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                allow_tls12: server.tls_allow_tls12,
            }),
            _ => None,
        },
        cors_origins: server.cors_origins.clone(),
        max_upload_bytes: server.max_upload_bytes,
        max_job_upload_bytes: server.max_job_upload_bytes,
        max_concurrent_queries: server.max_concurrent_queries,
        request_head_timeout: Duration::from_millis(server.request_head_timeout_ms),
        request_body_timeout: Duration::from_secs(server.request_body_timeout_seconds),
        open_access_guard: (settings.auth.mode == AuthMode::Off).then(|| {
            OpenAccessGuard::new(&server.bind, &server.allowed_hosts, &server.cors_origins)
        }),
    }
}

/// Everything the gateway serves, from one Verity.
pub fn services(verity: Arc<Verity>, authenticator: Arc<dyn Authenticator>) -> Services {
    Services {
        answers: verity.clone(),
        collections: verity.clone(),
        documents: verity.clone(),
        jobs: verity.clone(),
        traces: verity,
        authenticator,
    }
}

/// Builds the HTTP application for `verity` (opened from `settings`) on an already bound
/// listener.
pub async fn build_server(
    settings: &Settings,
    verity: Arc<Verity>,
    listener: TcpListener,
) -> anyhow::Result<Application> {
    verity_service::start_trace_retention(&verity);
    let config = gateway_config(settings);
    let authenticator = Arc::new(authenticator(settings, &verity).await?);
    Application::build(listener, services(verity, authenticator), config)
        .context("cannot start the HTTP server")
}
