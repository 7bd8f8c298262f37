//! Authentication: who a request's bearer token belongs to, as a [`Caller`] with scopes,
//! collections and access groups.
//!
//! Key decisions:
//! - API keys are random 256-bit secrets shown once; the store keeps only their SHA-256. A
//!   fast hash is enough (unlike for passwords) because the secret has full entropy: nothing
//!   can be guessed from its hash by trying likely keys.
//! - Every request looks its key up in the store, so revoking a key takes effect on the next
//!   request, from any process (`verity keys revoke` while `verity serve` runs).
//! - OIDC tokens are checked locally against the issuer's published keys (no call to the
//!   issuer per request); see [`OidcValidator`].
//! - A key's id is its public part (`vk_<id>_<secret>`), so a lookup is by primary key and
//!   the comparison of hashes is constant-time.

mod keys;
mod oidc;

pub use keys::{BearerAuthenticator, GeneratedKey, create_key, hash_key};
pub use oidc::{JwksSource, OidcConfig, OidcValidator, parse_algorithm};

use serde::Deserialize;

/// `auth.mode`: how requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthMode {
    /// No authentication: every request acts as the local operator. Only allowed on
    /// loopback.
    #[serde(rename = "off")]
    Off,
    /// API keys (`Authorization: Bearer vk_…`).
    #[serde(rename = "keys")]
    Keys,
    /// OpenID Connect bearer tokens (JWTs) from the configured issuer.
    #[serde(rename = "oidc")]
    Oidc,
    /// Either.
    #[serde(rename = "keys+oidc")]
    KeysAndOidc,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Keys => "keys",
            AuthMode::Oidc => "oidc",
            AuthMode::KeysAndOidc => "keys+oidc",
        }
    }

    pub fn accepts_keys(self) -> bool {
        matches!(self, AuthMode::Keys | AuthMode::KeysAndOidc)
    }

    pub fn accepts_oidc(self) -> bool {
        matches!(self, AuthMode::Oidc | AuthMode::KeysAndOidc)
    }
}
