//! API keys: creation, and authentication of requests that carry one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use verity_core::{
    Authenticator, Caller, Scope, VerityError, VerityResult, validate_collection_name,
    validate_group_name,
};
use verity_store::{NewApiKey, Store};

use crate::{AuthMode, OidcValidator};

const PREFIX: &str = "vk_";
/// Hex characters of a key's public id.
const ID_LEN: usize = 12;
/// Random bytes of a key's secret.
const SECRET_BYTES: usize = 32;
/// `last_used_at` is written at most this often per key (a write per request would cost more
/// than the rest of authentication).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A new key: `key` is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneratedKey {
    pub id: String,
    pub key: String,
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn random_hex(bytes: usize) -> VerityResult<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| {
        VerityError::internal("keys", format!("the system's random source failed: {e}"))
    })?;
    Ok(hex::encode(buffer))
}

/// The id part of a well-formed key.
fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_LEN && secret.len() == 2 * SECRET_BYTES).then_some(id)
}

/// Creates a key with these scopes, collections (`None`: all) and access groups.
pub async fn create_key(
    store: &Store,
    name: &str,
    scopes: &[Scope],
    collections: Option<&[String]>,
    groups: &[String],
) -> VerityResult<GeneratedKey> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(VerityError::invalid(
            "name",
            "a key needs a name of 1-100 characters (who or what uses it)",
        ));
    }
    if scopes.is_empty() {
        return Err(VerityError::invalid(
            "scopes",
            "a key needs at least one scope: query, ingest or admin",
        ));
    }
    for collection in collections.unwrap_or_default() {
        validate_collection_name(collection)?;
    }
    for group in groups {
        validate_group_name(group)?;
    }
    let id = random_hex(ID_LEN / 2)?;
    let key = format!("{PREFIX}{id}_{}", random_hex(SECRET_BYTES)?);
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
    store
        .create_api_key(&NewApiKey {
            id: &id,
            name: name.trim(),
            key_hash: &hash_key(&key),
            scopes: &scopes,
            collections,
            groups,
        })
        .await?;
    Ok(GeneratedKey { id, key })
}

/// Compares two equal-length strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Authenticates requests by API key against the store and/or by OIDC token, as `auth.mode`
/// says (or lets everything through as the local operator with `auth.mode = off`).
pub struct BearerAuthenticator {
    store: Store,
    mode: AuthMode,
    oidc: Option<OidcValidator>,
    last_touched: Mutex<HashMap<String, Instant>>,
}

impl BearerAuthenticator {
    /// `oidc` must be given when the mode accepts OIDC tokens.
    pub fn new(store: Store, mode: AuthMode, oidc: Option<OidcValidator>) -> VerityResult<Self> {
        if mode.accepts_oidc() && oidc.is_none() {
            return Err(VerityError::Config(format!(
                "auth.mode is {:?} but no OIDC issuer is configured: set auth.oidc.issuer, \
                 auth.oidc.audience and auth.oidc.jwks_url or auth.oidc.jwks_file",
                mode.as_str()
            )));
        }
        Ok(Self {
            store,
            mode,
            oidc,
            last_touched: Mutex::new(HashMap::new()),
        })
    }

    /// Updates `last_used_at` in the background, at most every [`TOUCH_EVERY`] per key.
    fn touch(&self, id: &str) {
        let due = {
            let mut touched = self.last_touched.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let due = touched
                .get(id)
                .is_none_or(|last| now.duration_since(*last) >= TOUCH_EVERY);
            if due {
                touched.insert(id.to_string(), now);
            }
            due
        };
        if due {
            let store = self.store.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(&id).await {
                    tracing::warn!(key = %id, error = %e, "cannot record the key's last use");
                }
            });
        }
    }
}

fn unauthenticated(message: &str) -> VerityError {
    VerityError::Unauthenticated(message.to_string())
}

#[async_trait]
impl Authenticator for BearerAuthenticator {
    async fn authenticate(&self, bearer: Option<&str>) -> VerityResult<Caller> {
        if self.mode == AuthMode::Off {
            return Ok(Caller::local());
        }
        let Some(token) = bearer else {
            return Err(unauthenticated(match self.mode {
                AuthMode::Oidc => {
                    "this request needs a token: send Authorization: Bearer <token from your identity provider>"
                }
                _ => {
                    "this request needs an API key: send Authorization: Bearer <key> \
                     (an administrator creates keys with `verity keys create`)"
                }
            }));
        };
        let looks_like_key = token.starts_with(PREFIX);
        match (&self.oidc, looks_like_key && self.mode.accepts_keys()) {
            (_, true) => self.authenticate_key(token).await,
            (Some(oidc), false) if self.mode.accepts_oidc() => oidc.validate(token).await,
            _ => Err(unauthenticated(
                "the API key is not valid (unknown, mistyped or revoked)",
            )),
        }
    }
}

impl BearerAuthenticator {
    async fn authenticate_key(&self, key: &str) -> VerityResult<Caller> {
        let invalid = || unauthenticated("the API key is not valid (unknown, mistyped or revoked)");
        let id = key_id(key).ok_or_else(invalid)?;
        let (record, stored_hash) = self.store.api_key(id).await?.ok_or_else(invalid)?;
        if !constant_time_eq(&hash_key(key), &stored_hash) || record.revoked_at.is_some() {
            return Err(invalid());
        }
        self.touch(id);
        Ok(Caller {
            subject: format!("key:{}", record.id),
            scopes: record
                .scopes
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            collections: record.collections,
            groups: Some(record.groups),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_keys_have_an_id() {
        let key = format!("vk_0123456789ab_{}", "f".repeat(64));
        assert_eq!(key_id(&key), Some("0123456789ab"));
        assert_eq!(key_id("vk_short_abc"), None);
        assert_eq!(key_id(&key.replace("vk_", "xx_")), None);
        assert_eq!(key_id(&key[..key.len() - 1]), None);
    }

    #[test]
    fn hashes_compare_only_when_equal() {
        assert!(constant_time_eq(&hash_key("a"), &hash_key("a")));
        assert!(!constant_time_eq(&hash_key("a"), &hash_key("b")));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
