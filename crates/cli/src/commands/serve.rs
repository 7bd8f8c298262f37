//! `verity serve`: the HTTP API (and, unless told otherwise, an ingest worker).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use verity_auth::AuthMode;
use verity_cli::build_server;
use verity_cli::settings::Settings;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default: server.bind, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) bind: Option<String>,
    /// Serve HTTPS (TLS 1.3) with this PEM certificate chain (default: server.tls_cert).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (default: server.tls_key).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub(crate) async fn serve(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        settings.server.tls_cert = Some(cert);
        settings.server.tls_key = Some(key);
    }
    let bind = settings.server.bind.clone();
    let auth = settings.auth.mode;
    let tls = settings.server.tls_cert.is_some();
    if auth == AuthMode::Off {
        let addresses: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&bind)
            .with_context(|| format!("cannot resolve the bind address {bind}"))?
            .collect();
        anyhow::ensure!(
            !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()),
            "refusing to serve on {bind} with authentication off (auth.mode = \"off\"): anyone \
             who can reach it could read every document. Set VERITY_AUTH_MODE=keys and create \
             keys with `verity keys create`, or bind to 127.0.0.1"
        );
        eprintln!(
            "authentication is off (auth.mode = \"off\"): serving on loopback only, every request acts as the operator"
        );
    }
    let mut verity = verity_cli::open(&settings).await?;
    verity_cli::enable_generation(&mut verity, &settings).await?;
    let verity = Arc::new(verity);
    if settings.ingest.serve_worker {
        // Jobs of POST /v1/ingest/jobs (and `verity ingest --enqueue`) are ingested here; a
        // job a killed server left behind resumes now.
        verity_service::worker::start_serve_worker(Arc::clone(&verity)).await?;
    }
    let listener = TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let scheme = if tls { "https" } else { "http" };
    let app = build_server(&settings, verity, listener).await?;
    eprintln!(
        "verity listening on {scheme}://{address} (POST /v1/query, GET /healthz, GET /readyz, GET /metrics); authentication: {}",
        auth.as_str()
    );
    app.run_until_stopped().await.context("HTTP server failed")
}
