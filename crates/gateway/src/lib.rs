//! The HTTP API. It speaks HTTP and JSON to clients and the [`AnswerService`] trait to the rest
//! of Verity; it knows nothing of SQL, Qdrant or models.
//!
//! Key decision: one error envelope, `{"error": {"code", "message", "details"}}`, for every
//! failure, and every input a client can send (bad JSON, wrong content type, oversize bodies,
//! unknown routes or methods) answered with a 4xx naming the problem, never a 500.

mod auth;
mod collections;
mod compat;
mod documents;
mod error;
mod jobs;
mod limits;
mod openapi;
mod origin;
mod page;
mod request_log;
mod routes;
mod sse;

use std::net::TcpListener;
use std::sync::{Arc, LazyLock};

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Condition;
use actix_web::{App, HttpMessage, HttpServer, web};
use tracing::Instrument;
use verity_core::{AnswerService, AnswerTraces, Authenticator, Collections, Documents, IngestJobs};

pub use auth::RateLimit;
pub use error::{ApiError, ErrorCode};
pub use origin::OpenAccessGuard;
pub use request_log::redact;

/// Time to the response head (for a streamed answer, to its first byte), by route pattern and
/// status.
static HTTP_SECONDS: LazyLock<prometheus::HistogramVec> = LazyLock::new(|| {
    prometheus::register_histogram_vec!(
        "verity_http_request_seconds",
        "HTTP request latency to the response head, by route and status",
        &["route", "status"],
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
        ]
    )
    .expect("metric registers once")
});

/// Request bodies over this size are refused with 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Uploaded documents over this size are refused with 413.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
/// The files of one ingest job together over this size are refused with 413.
pub const DEFAULT_MAX_JOB_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 lets actix choose (one per core).
    pub workers: usize,
    /// Per-caller request rate; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Serve HTTPS with this certificate; `None`: plain HTTP (behind a TLS proxy, or loopback).
    pub tls: Option<TlsFiles>,
    /// Web origins (`https://intranet.example.com`) whose pages may call the API; empty: no
    /// CORS headers at all, so browsers refuse cross-origin calls.
    pub cors_origins: Vec<String>,
    /// Uploaded documents over this size are refused with 413.
    pub max_upload_bytes: usize,
    /// All the files of one ingest job together over this size are refused with 413.
    pub max_job_upload_bytes: usize,
    /// Questions answered at once; one more is refused with 429. 0: no limit.
    pub max_concurrent_queries: usize,
    /// A client must send its request head within this time (else 408)…
    pub request_head_timeout: std::time::Duration,
    /// …and its body within this one (else 408).
    pub request_body_timeout: std::time::Duration,
    /// With authentication off: the Host allow-list and same-origin check that keep other web
    /// pages from using the API through the operator's browser (see [`OpenAccessGuard`]).
    pub open_access_guard: Option<OpenAccessGuard>,
}

/// What the gateway serves: each a trait, so the gateway knows nothing of what implements it.
#[derive(Clone)]
pub struct Services {
    pub answers: Arc<dyn AnswerService>,
    pub collections: Arc<dyn Collections>,
    pub documents: Arc<dyn Documents>,
    pub jobs: Arc<dyn IngestJobs>,
    pub traces: Arc<dyn AnswerTraces>,
    pub authenticator: Arc<dyn Authenticator>,
}

/// CORS for the configured origins only; credentials travel in the Authorization header,
/// never in cookies.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(["authorization", "content-type", "accept", "x-request-id"])
        .expose_headers(["retry-after", "x-request-id", "server-timing"])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Also accept TLS 1.2 clients (TLS 1.3 only otherwise).
    pub allow_tls12: bool,
}

/// The rustls configuration for `files`: TLS 1.3 (and 1.2 if allowed), no client certificates.
pub fn tls_config(files: &TlsFiles) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cannot read the TLS {what} {}: {e}", path.display()),
        )
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| invalid("certificate", &files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("certificate", &files.cert, &e))?;
    if chain.is_empty() {
        return Err(invalid(
            "certificate",
            &files.cert,
            &"no PEM certificate in it",
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| invalid("key", &files.key, &e))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if files.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| std::io::Error::other(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| invalid("certificate and key", &files.cert, &e))
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            workers: 0,
            rate_limit: None,
            tls: None,
            cors_origins: Vec::new(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_job_upload_bytes: DEFAULT_MAX_JOB_UPLOAD_BYTES,
            max_concurrent_queries: 16,
            request_head_timeout: std::time::Duration::from_secs(5),
            request_body_timeout: std::time::Duration::from_secs(30),
            open_access_guard: None,
        }
    }
}

/// A running HTTP server bound to a listener (port 0 in tests picks a free port).
pub struct Application {
    server: Server,
    port: u16,
}

impl Application {
    pub fn build(
        listener: TcpListener,
        services: Services,
        config: GatewayConfig,
    ) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let service = web::Data::from(services.answers);
        let collections = web::Data::from(services.collections);
        let documents = web::Data::from(services.documents);
        let traces = web::Data::from(services.traces);
        let jobs = web::Data::from(services.jobs);
        let authenticator = web::Data::from(services.authenticator);
        // One budget of concurrent questions for all workers.
        let query_slots = web::Data::new(limits::QuerySlots::new(config.max_concurrent_queries));
        let upload_limit = web::Data::new(documents::UploadLimit(config.max_upload_bytes));
        let job_limits = web::Data::new(verity_core::UploadLimits {
            per_file: config.max_upload_bytes,
            total: config.max_job_upload_bytes,
        });
        // One count of open job event streams for all workers.
        let job_watchers = web::Data::new(jobs::JobWatchers::default());
        let body_timeout = config.request_body_timeout;
        // One limiter for all workers, so a caller's budget is per server, not per thread.
        let limiter = web::Data::new(config.rate_limit.and_then(auth::RateLimiter::new));
        let max_body = config.max_body_bytes;
        let cors_origins = config.cors_origins.clone();
        let open_access_guard = web::Data::new(config.open_access_guard.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                // Before anything else runs (it is inside only the request log).
                .wrap(actix_web::middleware::from_fn(origin::guard))
                // Bodies must arrive in time, whatever reads them.
                .wrap_fn(move |request, service| {
                    let request = limits::with_body_deadline(request, body_timeout);
                    service.call(request)
                })
                .wrap_fn(|request, service| {
                    let started = std::time::Instant::now();
                    let id = request_log::request_id(
                        request
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok()),
                    );
                    let method = request.method().to_string();
                    let path = redact(&request.uri().to_string());
                    // Everything logged while handling the request carries its id.
                    let span = tracing::info_span!("request", request_id = %id);
                    let response = service.call(request).instrument(span);
                    async move {
                        let mut response = response.await?;
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".to_string());
                        let elapsed = started.elapsed();
                        HTTP_SECONDS
                            .with_label_values(&[route.as_str(), response.status().as_str()])
                            .observe(elapsed.as_secs_f64());
                        let caller = response
                            .request()
                            .extensions()
                            .get::<request_log::CallerSubject>()
                            .map_or_else(|| "-".to_string(), |c| c.0.clone());
                        if let Ok(value) = HeaderValue::from_str(&id) {
                            response
                                .headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), value);
                        }
                        tracing::info!(
                            target: "verity::http",
                            request_id = %id,
                            %method,
                            %path,
                            status = response.status().as_u16(),
                            duration_ms = elapsed.as_secs_f64() * 1000.0,
                            %caller,
                            "request"
                        );
                        Ok(response)
                    }
                })
                .app_data(service.clone())
                .app_data(collections.clone())
                .app_data(documents.clone())
                .app_data(traces.clone())
                .app_data(jobs.clone())
                .app_data(job_limits.clone())
                .app_data(job_watchers.clone())
                .app_data(query_slots.clone())
                .app_data(upload_limit.clone())
                .app_data(authenticator.clone())
                .app_data(limiter.clone())
                .app_data(open_access_guard.clone())
                .app_data(routes::json_config(max_body))
                .app_data(routes::query_config())
                .configure(routes::configure)
        });
        // Slow clients: the request head must come within the timeout (else 408), and an idle
        // or half-closed connection is dropped rather than held.
        server = server
            .client_request_timeout(config.request_head_timeout)
            .client_disconnect_timeout(std::time::Duration::from_secs(2))
            .keep_alive(std::time::Duration::from_secs(30));
        server = match &config.tls {
            Some(files) => server.listen_rustls_0_23(listener, tls_config(files)?)?,
            None => server.listen(listener)?,
        };
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        Ok(Self {
            server: server.run(),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
