//! API keys in the metadata store. Only a hash of each key is kept.

use serde::Serialize;
use sqlx::Row;
use verity_core::{VerityError, VerityResult};

use crate::store::{Store, db_error, json_error, now};

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// `None`: every collection.
    pub collections: Option<Vec<String>>,
    pub groups: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What creating a key stores.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a [String],
    pub collections: Option<&'a [String]>,
    pub groups: &'a [String],
}

/// The columns every key query selects (a macro, so the queries stay literal strings).
macro_rules! key_columns {
    () => {
        "id, name, key_hash, scopes, collections, groups_json, created_at, last_used_at, revoked_at"
    };
}

fn record(row: &sqlx::any::AnyRow) -> VerityResult<(ApiKeyRecord, String)> {
    let collections: Option<String> = row.get("collections");
    Ok((
        ApiKeyRecord {
            id: row.get("id"),
            name: row.get("name"),
            scopes: serde_json::from_str(row.get::<&str, _>("scopes")).map_err(json_error)?,
            collections: collections
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(json_error)?,
            groups: serde_json::from_str(row.get::<&str, _>("groups_json")).map_err(json_error)?,
            created_at: row.get("created_at"),
            last_used_at: row.get("last_used_at"),
            revoked_at: row.get("revoked_at"),
        },
        row.get("key_hash"),
    ))
}

impl Store {
    pub async fn create_api_key(&self, key: &NewApiKey<'_>) -> VerityResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, scopes, collections, groups_json, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id)
        .bind(key.name)
        .bind(key.key_hash)
        .bind(serde_json::to_string(key.scopes).map_err(json_error)?)
        .bind(
            key.collections
                .map(serde_json::to_string)
                .transpose()
                .map_err(json_error)?,
        )
        .bind(serde_json::to_string(key.groups).map_err(json_error)?)
        .bind(now())
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// The key with this id and its stored hash, revoked or not.
    pub async fn api_key(&self, id: &str) -> VerityResult<Option<(ApiKeyRecord, String)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(record).transpose()
    }

    pub async fn list_api_keys(&self) -> VerityResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| record(row).map(|(key, _)| key))
            .collect()
    }

    /// Revokes a key; an unknown id is a `NotFound` error, an already revoked key stays as it
    /// was.
    pub async fn revoke_api_key(&self, id: &str) -> VerityResult<()> {
        let updated =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(now())
                .execute(self.pool())
                .await
                .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(VerityError::NotFound {
                what: "API key",
                name: id.to_string(),
            });
        }
        Ok(())
    }

    /// Records that a key was used now.
    pub async fn touch_api_key(&self, id: &str) -> VerityResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
