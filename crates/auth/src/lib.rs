//! Authentication: who a request's bearer token belongs to, as a [`Caller`] with scopes,
//! collections and access groups.
//!
//! Key decisions:
//! - API keys are random 256-bit secrets shown once; the store keeps only their SHA-256. A
//!   fast hash is enough (unlike for passwords) because the secret has full entropy: nothing
//!   can be guessed from its hash by trying likely keys.
//! - Every request looks its key up in the store, so revoking a key takes effect on the next
//!   request, from any process (`verity keys revoke` while `verity serve` runs).
//! - A key's id is its public part (`vk_<id>_<secret>`), so a lookup is by primary key and
//!   the comparison of hashes is constant-time.

mod keys;

pub use keys::{GeneratedKey, KeyAuthenticator, create_key, hash_key};

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
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Keys => "keys",
        }
    }
}
