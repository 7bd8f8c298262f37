//! The HTTP API. It speaks HTTP and JSON to clients and the [`AnswerService`] trait to the rest
//! of Verity; it knows nothing of SQL, Qdrant or models.
//!
//! Key decision: one error envelope, `{"error": {"code", "message", "details"}}`, for every
//! failure, and every input a client can send (bad JSON, wrong content type, oversize bodies,
//! unknown routes or methods) answered with a 4xx naming the problem, never a 500.

mod auth;
mod compat;
mod error;
mod routes;
mod sse;

use std::net::TcpListener;
use std::sync::{Arc, LazyLock};

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, middleware, web};
use verity_core::{AnswerService, Authenticator};

pub use auth::RateLimit;
pub use error::ApiError;

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

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 lets actix choose (one per core).
    pub workers: usize,
    /// Per-caller request rate; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            workers: 0,
            rate_limit: None,
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
        service: Arc<dyn AnswerService>,
        authenticator: Arc<dyn Authenticator>,
        config: GatewayConfig,
    ) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let service = web::Data::from(service);
        let authenticator = web::Data::from(authenticator);
        // One limiter for all workers, so a caller's budget is per server, not per thread.
        let limiter = web::Data::new(config.rate_limit.and_then(auth::RateLimiter::new));
        let max_body = config.max_body_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap_fn(|request, service| {
                    let started = std::time::Instant::now();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".to_string());
                        HTTP_SECONDS
                            .with_label_values(&[route.as_str(), response.status().as_str()])
                            .observe(started.elapsed().as_secs_f64());
                        Ok(response)
                    }
                })
                .wrap(middleware::Logger::new("%a \"%r\" %s %b %Dms").log_target("verity::http"))
                .app_data(service.clone())
                .app_data(authenticator.clone())
                .app_data(limiter.clone())
                .app_data(routes::json_config(max_body))
                .configure(routes::configure)
        })
        .listen(listener)?;
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
