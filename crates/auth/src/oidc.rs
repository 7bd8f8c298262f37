//! OAuth 2.0 / OpenID Connect bearer tokens: JWTs signed by a configured issuer, checked
//! against its JSON Web Key Set.
//!
//! Checked on every token: the signature, with a key of the issuer's JWKS chosen by `kid`; the
//! algorithm, from an allow-list of asymmetric ones (never `none`, never HMAC — so a token
//! "signed" with the issuer's public key as an HMAC secret is refused); `iss`, `aud`, `exp`
//! and `nbf` (30 s of clock leeway). Groups come from a configurable claim.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use verity_core::{Caller, Scope, VerityError, VerityResult};

/// Where the issuer's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim holding the caller's groups (a list of strings, or one string).
    pub groups_claim: String,
    /// Accepted signature algorithms; only asymmetric ones are allowed.
    pub algorithms: Vec<Algorithm>,
}

/// Keys are fetched again at most this often when a token names an unknown `kid` (the issuer
/// rotated its keys).
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const LEEWAY_SECONDS: u64 = 30;

pub struct OidcValidator {
    config: OidcConfig,
    keys: RwLock<JwkSet>,
    /// When the keys were last fetched or tried. Held across a fetch, so that a burst of
    /// tokens naming an unknown `kid` makes one request to the issuer, not one each, and a
    /// failing issuer is asked again only after [`REFRESH_AT_MOST_EVERY`].
    last_fetch: tokio::sync::Mutex<Instant>,
    http: reqwest::Client,
}

fn unauthenticated(message: impl Into<String>) -> VerityError {
    VerityError::Unauthenticated(message.into())
}

/// Parses an algorithm name from settings; symmetric ones are refused.
pub fn parse_algorithm(name: &str) -> VerityResult<Algorithm> {
    let algorithm: Algorithm = name.parse().map_err(|_| {
        VerityError::Config(format!(
            "unknown JWT algorithm {name:?} in auth.oidc.algorithms"
        ))
    })?;
    if matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(VerityError::Config(format!(
            "auth.oidc.algorithms may not contain {name}: HMAC algorithms share the secret with \
             every verifier; use the issuer's asymmetric algorithm (RS256, ES256, …)"
        )));
    }
    Ok(algorithm)
}

impl OidcValidator {
    pub async fn new(config: OidcConfig) -> VerityResult<Self> {
        if config.algorithms.is_empty() {
            return Err(VerityError::Config(
                "auth.oidc.algorithms is empty: name the issuer's algorithm (e.g. RS256)".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| VerityError::Config(format!("cannot build the HTTP client: {e}")))?;
        let keys = fetch(&config.jwks, &http).await?;
        Ok(Self {
            config,
            keys: RwLock::new(keys),
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
            http,
        })
    }

    fn key_for(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let jwk = match kid {
            Some(kid) => keys.find(kid)?,
            None if keys.keys.len() == 1 => &keys.keys[0],
            None => return None,
        };
        DecodingKey::from_jwk(jwk).ok()
    }

    /// Fetches the key set again if the last fetch (or failed try) is old enough. Callers that
    /// come while a fetch runs wait for it and then use its keys.
    async fn refresh(&self) {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.elapsed() < REFRESH_AT_MOST_EVERY {
            return;
        }
        *last_fetch = Instant::now();
        match fetch(&self.config.jwks, &self.http).await {
            Ok(fresh) => *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh,
            Err(e) => tracing::warn!(error = %e, "cannot refresh the OIDC issuer's keys"),
        }
    }

    pub async fn validate(&self, token: &str) -> VerityResult<Caller> {
        let header = decode_header(token)
            .map_err(|e| unauthenticated(format!("the bearer token is not a valid JWT: {e}")))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(unauthenticated(format!(
                "the token is signed with {:?}, which this server does not accept",
                header.alg
            )));
        }
        let key = match self.key_for(header.kid.as_deref()) {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.key_for(header.kid.as_deref()).ok_or_else(|| {
                    unauthenticated("the token was signed with a key the issuer does not publish")
                })?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|e| unauthenticated(format!("the token was refused: {e}")))?
            .claims;
        let subject = claims["sub"].as_str().unwrap_or_default().to_string();
        let groups = match &claims[self.config.groups_claim.as_str()] {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::String(one) => vec![one.clone()],
            _ => Vec::new(),
        };
        // Everyone the issuer vouches for may ask; more needs the scope in the token.
        let granted = claims["scope"].as_str().unwrap_or_default();
        let mut scopes = vec![Scope::Query];
        for (scope, name) in [
            (Scope::Ingest, "verity:ingest"),
            (Scope::Admin, "verity:admin"),
        ] {
            if granted.split_whitespace().any(|s| s == name) {
                scopes.push(scope);
            }
        }
        Ok(Caller {
            subject: format!("oidc:{subject}"),
            scopes,
            collections: None,
            groups: Some(groups),
        })
    }
}

async fn fetch(source: &JwksSource, http: &reqwest::Client) -> VerityResult<JwkSet> {
    let text = match source {
        JwksSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
            VerityError::Config(format!("cannot read the JWKS file {}: {e}", path.display()))
        })?,
        JwksSource::Url(url) => http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                VerityError::unavailable(
                    "OIDC issuer",
                    format!("cannot fetch its keys from {url}: {e}"),
                )
            })?
            .text()
            .await
            .map_err(|e| {
                VerityError::unavailable(
                    "OIDC issuer",
                    format!("cannot read its keys from {url}: {e}"),
                )
            })?,
    };
    serde_json::from_str(&text)
        .map_err(|e| VerityError::Config(format!("the issuer's key set is not a valid JWKS: {e}")))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A JWT header naming a `kid` the issuer does not publish (only the header is read before
    /// the key is looked up).
    const UNKNOWN_KID_TOKEN: &str =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6InJvdGF0ZWQtYXdheSIsInR5cCI6IkpXVCJ9.e30.c2ln";

    /// Serves the test JWKS over HTTP, slowly (a fetch takes 300 ms, so that tokens arriving
    /// together overlap it), counting the requests.
    fn slow_issuer() -> (String, Arc<AtomicUsize>) {
        let jwks = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/oidc/jwks.json"),
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&fetches);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                std::thread::spawn(move || {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    std::thread::sleep(Duration::from_millis(300));
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                        jwks.len()
                    );
                });
            }
        });
        (url, fetches)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_unknown_kids_fetches_the_issuers_keys_once() {
        let (url, fetches) = slow_issuer();
        let validator = Arc::new(
            OidcValidator::new(OidcConfig {
                issuer: "https://issuer.example".into(),
                audience: "verity".into(),
                jwks: JwksSource::Url(url),
                groups_claim: "groups".into(),
                algorithms: vec![Algorithm::RS256],
            })
            .await
            .unwrap(),
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "the keys are fetched at start"
        );
        // The last fetch is old enough for an unknown kid to ask the issuer again.
        *validator.last_fetch.lock().await = Instant::now()
            .checked_sub(REFRESH_AT_MOST_EVERY * 2)
            .unwrap();

        let burst: Vec<_> = (0..40)
            .map(|_| {
                let validator = Arc::clone(&validator);
                tokio::spawn(async move { validator.validate(UNKNOWN_KID_TOKEN).await })
            })
            .collect();
        for token in burst {
            let refused = token.await.unwrap().unwrap_err();
            assert!(
                matches!(refused, VerityError::Unauthenticated(_)),
                "{refused}"
            );
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "40 tokens with an unknown kid at once fetch the keys once"
        );
        // And not again before REFRESH_AT_MOST_EVERY.
        validator.validate(UNKNOWN_KID_TOKEN).await.unwrap_err();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
