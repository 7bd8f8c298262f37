//! With authentication off every request acts as the operator, so the only thing keeping other
//! web pages out is that they cannot address the server. Loopback alone does not ensure that:
//! a page the operator visits can send a form to `http://127.0.0.1:8080` (a "simple" POST
//! needs no CORS preflight), or rebind its own name to 127.0.0.1 and read the answers (DNS
//! rebinding). Two checks close both, without a token to type at the first run:
//!
//! - **Host allow-list**: a request must be addressed (its `Host`) to a loopback name, the
//!   configured listen host, or a name in `server.allowed_hosts`; a rebound attacker's name is
//!   refused with 421 before anything runs.
//! - **Same origin for unsafe methods**: a POST or DELETE a browser sends from another page
//!   says so (`Sec-Fetch-Site: cross-site` / `same-site`, or an `Origin` that is not this
//!   server's own nor one of `server.cors_origins`) and is refused with 403. Clients that are
//!   not browsers (curl, scripts) send neither header and are not affected, nor is the page
//!   Verity itself serves.

// A refusal ends the request; its size does not matter next to an HTTP round trip.
#![allow(clippy::result_large_err)]

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HOST, ORIGIN};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::error::ApiError;
use crate::error::ErrorCode;

/// The names a request may be addressed to when authentication is off.
#[derive(Debug, Clone)]
pub struct OpenAccessGuard {
    hosts: Vec<String>,
    cors_origins: Vec<String>,
}

const LOOPBACK_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "::1", "[::1]"];

impl OpenAccessGuard {
    /// Loopback names, the host of `bind` (`127.0.0.1:8080`), and `extra` names; requests from
    /// pages of `cors_origins` are same-origin enough.
    pub fn new(bind: &str, extra: &[String], cors_origins: &[String]) -> Self {
        let mut hosts: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        hosts.push(host_name(bind).to_string());
        hosts.extend(extra.iter().map(|h| host_name(h.trim()).to_string()));
        for host in &mut hosts {
            host.make_ascii_lowercase();
        }
        hosts.retain(|h| !h.is_empty());
        hosts.dedup();
        Self {
            hosts,
            cors_origins: cors_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Checks a request's `Host`, and for unsafe methods where it comes from.
    pub fn check(
        &self,
        method: &Method,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), ApiError> {
        let host = host.unwrap_or_default().trim().to_ascii_lowercase();
        let name = host_name(&host);
        if !self.hosts.iter().any(|allowed| allowed == name) {
            return Err(ApiError::new(
                ErrorCode::HostNotAllowed,
                format!(
                    "with authentication off this server answers only requests addressed to {}, \
                     not {host:?}: add the name to server.allowed_hosts, or turn authentication on",
                    self.hosts.join(", ")
                ),
            ));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let cross = |from: &str| {
            ApiError::new(
                ErrorCode::CrossOriginRefused,
                format!(
                    "a {method} from another web page ({from}) is refused while authentication is \
                     off: open Verity's own page, call it without a browser, list the page's \
                     origin in server.cors_origins, or turn authentication on"
                ),
            )
        };
        if let Some(site) = fetch_site
            && !matches!(site.trim(), "same-origin" | "none")
        {
            return Err(cross(&format!("Sec-Fetch-Site: {site}")));
        }
        if let Some(origin) = origin {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let own = origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host);
            if !own && !self.cors_origins.contains(&origin) {
                return Err(cross(&format!("Origin: {origin}")));
            }
        }
        Ok(())
    }
}

/// The name part of `host[:port]`, `[v6]:port` or a bare IPv6 address.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has more than one colon.
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => authority,
    }
}

/// The middleware: applies the guard the app holds, if any.
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let guard = request
        .app_data::<web::Data<Option<OpenAccessGuard>>>()
        .and_then(|g| g.get_ref().clone());
    if let Some(guard) = guard {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // HTTP/2 carries the host in the URI's authority instead.
        let host = header(HOST).or_else(|| request.uri().authority().map(|a| a.to_string()));
        if let Err(error) = guard.check(
            request.method(),
            host.as_deref(),
            header(ORIGIN).as_deref(),
            header(actix_web::http::header::HeaderName::from_static(
                "sec-fetch-site",
            ))
            .as_deref(),
        ) {
            let response = error.error_response();
            return Ok(request.into_response(response).map_into_right_body());
        }
    }
    next.call(request).await.map(|r| r.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> OpenAccessGuard {
        OpenAccessGuard::new(
            "127.0.0.1:8080",
            &["verity.lan".to_string()],
            &["https://intranet.example.com".to_string()],
        )
    }

    #[test]
    fn only_loopback_the_listen_host_and_allowed_names_are_answered() {
        let guard = guard();
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "verity.lan:8080",
        ] {
            assert!(
                guard.check(&Method::GET, Some(host), None, None).is_ok(),
                "{host}"
            );
        }
        for host in [
            "rebind.attacker.example",
            "rebind.attacker.example:8080",
            "127.0.0.1.attacker.example",
            "localhost.attacker.example:8080",
            "",
        ] {
            let error = guard
                .check(&Method::GET, Some(host), None, None)
                .unwrap_err();
            assert_eq!(
                error.status,
                actix_web::http::StatusCode::MISDIRECTED_REQUEST,
                "{host}"
            );
        }
        assert!(guard.check(&Method::GET, None, None, None).is_err());
    }

    #[test]
    fn unsafe_requests_from_other_pages_are_refused_and_the_own_page_and_tools_pass() {
        let guard = guard();
        let host = Some("127.0.0.1:8080");
        // Verity's own page, curl, an allowed CORS origin.
        for (origin, site) in [
            (Some("http://127.0.0.1:8080"), Some("same-origin")),
            (None, None),
            (None, Some("none")),
            (Some("https://intranet.example.com"), None),
        ] {
            assert!(
                guard.check(&Method::POST, host, origin, site).is_ok(),
                "{origin:?} {site:?}"
            );
        }
        for (origin, site) in [
            (Some("https://evil.example"), None),
            (Some("null"), None),
            (Some("http://localhost:8080"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("http://127.0.0.1:8080"), Some("cross-site")),
        ] {
            for method in [Method::POST, Method::DELETE, Method::PUT] {
                let error = guard.check(&method, host, origin, site).unwrap_err();
                assert_eq!(
                    error.status,
                    actix_web::http::StatusCode::FORBIDDEN,
                    "{origin:?} {site:?}"
                );
            }
        }
        // Reading is allowed from anywhere addressed right (CORS keeps the answer from them).
        assert!(
            guard
                .check(
                    &Method::GET,
                    host,
                    Some("https://evil.example"),
                    Some("cross-site")
                )
                .is_ok()
        );
    }

    #[test]
    fn host_names_lose_their_ports() {
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("::1"), "::1");
        assert_eq!(host_name("verity.lan"), "verity.lan");
    }
}
