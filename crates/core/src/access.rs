//! Who is asking, and what they may see: the identity every request carries from
//! authentication to the vector query.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{VerityError, VerityResult};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Ask questions.
    Query,
    /// Add and remove documents.
    Ingest,
    /// Manage collections and keys.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Query, Scope::Ingest, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Query => "query",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: use query, ingest or admin"))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `key:<id>`, `oidc:<subject>`, or `local` (authentication off, or the CLI).
    pub subject: String,
    pub scopes: Vec<Scope>,
    /// The collections it may use; `None`: all of them.
    pub collections: Option<Vec<String>>,
    /// Its access groups: it sees documents of these groups and documents without groups.
    /// `None`: no document-level condition (authentication off, or the CLI).
    pub groups: Option<Vec<String>>,
}

impl Caller {
    /// Whoever runs Verity on its own data: every scope, every collection, every document.
    pub fn local() -> Self {
        Self {
            subject: "local".to_string(),
            scopes: Scope::ALL.to_vec(),
            collections: None,
            groups: None,
        }
    }

    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Refuses a caller without `scope`: the first check of every use case.
    pub fn require(&self, scope: Scope) -> VerityResult<()> {
        if self.may(scope) {
            Ok(())
        } else {
            Err(VerityError::Forbidden(format!(
                "this key does not have the {} scope",
                scope.as_str()
            )))
        }
    }

    pub fn may_use_collection(&self, name: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|c| c == name))
    }
}

/// A collection as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionInfo {
    pub name: String,
    /// Documents of the collection the caller may read.
    pub documents: usize,
}

/// Collections, as the API manages them. Every method answers for `caller`: collections it may
/// not use do not exist for it.
#[async_trait]
pub trait Collections: Send + Sync {
    async fn list_collections(&self, caller: &Caller) -> VerityResult<Vec<CollectionInfo>>;
    /// Creates an empty collection whose documents get `default_groups` when their ingest
    /// names none; `false` (and nothing changed) if it existed already.
    async fn create_collection(
        &self,
        caller: &Caller,
        name: &str,
        default_groups: &[String],
    ) -> VerityResult<bool>;
    /// Removes a collection with its documents and their chunks; returns how many documents.
    async fn delete_collection(&self, caller: &Caller, name: &str) -> VerityResult<usize>;
}

/// Turns a request's bearer token into a caller, or refuses it
/// ([`crate::VerityError::Unauthenticated`]).
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, bearer: Option<&str>) -> VerityResult<Caller>;
}
