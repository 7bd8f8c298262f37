use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, Executor, Row};
use verity_core::{Chunk, VerityError, VerityResult};

use crate::library::DeletedDocuments;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A database error as Verity reports it: the database being unreachable is `Unavailable`
/// (HTTP 503, retry later); anything else is a bug or a broken database (`Internal`).
pub(crate) fn db_error(err: sqlx::Error) -> VerityError {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => VerityError::unavailable("metadata store", err),
        other => VerityError::internal("metadata store", other),
    }
}

pub(crate) fn json_error(err: serde_json::Error) -> VerityError {
    VerityError::internal("metadata store", err)
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub fn of_url(url: &str) -> VerityResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(VerityError::Config(format!(
                "database URL {:?} is neither sqlite:… nor postgres://…",
                redact(url)
            )))
        }
    }
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A document as ingest writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    pub id: String,
    pub collection: String,
    pub source: String,
    pub title: String,
    pub format: String,
    pub content_hash: String,
    pub pipeline: String,
    pub text: String,
    /// ISO 639-1 code: `en`, `es`, `pt`.
    pub language: String,
    pub tags: Vec<String>,
    /// Access groups that may read the document; empty: anyone who may read the collection.
    pub groups: Vec<String>,
    /// When the file was last modified, in seconds since the Unix epoch.
    pub modified: Option<i64>,
}

/// What ingest needs to know about a document already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    pub content_hash: String,
    pub pipeline: String,
    pub version: i64,
    pub active: bool,
    /// Its access groups: who may read it, and so who may replace it.
    pub groups: Vec<String>,
}

/// A stored document, as listed for a collection (without its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub source: String,
    pub title: String,
    pub version: i64,
    /// `false` while the document is being (re)indexed.
    pub active: bool,
    pub language: String,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub modified: Option<i64>,
}

/// The metadata store, on SQLite (embedded default) or Postgres (production), chosen by the
/// database URL. One set of queries serves both (sqlx's `Any` driver; `$n` placeholders, which
/// SQLite also reads); each backend has its own migrations.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> VerityResult<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                VerityError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to a `sqlite:` or `postgres://` URL and brings the schema up to date. A
    /// database migrated by a newer Verity is refused.
    pub async fn connect(url: &str) -> VerityResult<Self> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            // Fail fast when the database is down: a request waiting longer is lost anyway.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers and the writer work at once; NORMAL is durable in WAL
                        // mode except for the last transactions on power loss (not on a crash).
                        connection
                            .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| {
                VerityError::unavailable(
                    "metadata store",
                    format!("cannot connect to {}: {e}", redact(url)),
                )
            })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| match e {
            MigrateError::VersionMissing(version) => VerityError::Config(format!(
                "the database {} was migrated by a newer Verity (migration {version} is unknown to this binary); upgrade verity",
                redact(url)
            )),
            other => VerityError::unavailable("metadata store", format!("migration failed: {other}")),
        })?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> VerityResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| VerityError::unavailable("metadata store", e))?;
        Ok(())
    }

    pub async fn ensure_collection(&self, name: &str) -> VerityResult<()> {
        sqlx::query("INSERT INTO collections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn collection_exists(&self, name: &str) -> VerityResult<bool> {
        let row = sqlx::query("SELECT 1 FROM collections WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    pub async fn list_collections(&self) -> VerityResult<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM collections ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    /// Removes a collection with its documents and chunks, and withdraws their text from the
    /// answer traces that drew on them.
    pub async fn delete_collection(&self, name: &str) -> VerityResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        Store::withdraw_from_traces(&mut tx, DeletedDocuments::OfCollection(name)).await?;
        sqlx::query("DELETE FROM collections WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    pub async fn document_state(&self, id: &str) -> VerityResult<Option<DocumentState>> {
        let row = sqlx::query(
            "SELECT content_hash, pipeline, version, status, access_groups FROM documents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(|row| {
            Ok(DocumentState {
                content_hash: row.get("content_hash"),
                pipeline: row.get("pipeline"),
                version: row.get("version"),
                active: row.get::<String, _>("status") == "active",
                groups: serde_json::from_str(row.get::<&str, _>("access_groups"))
                    .map_err(json_error)?,
            })
        })
        .transpose()
    }

    /// Writes a document and replaces its chunks in one transaction, leaving it `indexing`.
    /// Returns the chunk ids it had before (so the caller can remove them from the index).
    pub async fn write_document(
        &self,
        document: &DocumentRecord,
        chunks: &[Chunk],
    ) -> VerityResult<Vec<String>> {
        // The first statement writes, so the transaction holds SQLite's write lock from its
        // start: one that read first and then wrote would fail at once (SQLITE_BUSY, snapshot
        // stale) whenever another connection wrote in between, instead of waiting its turn.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO documents (id, collection, source, title, format, content_hash, pipeline, status, text, language, tags, modified, access_groups)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'indexing', $8, $9, $10, $11, $13)
             ON CONFLICT (id) DO UPDATE SET
                title = excluded.title, format = excluded.format,
                content_hash = excluded.content_hash, pipeline = excluded.pipeline,
                status = 'indexing', text = excluded.text, language = excluded.language,
                tags = excluded.tags, modified = excluded.modified,
                access_groups = excluded.access_groups,
                version = documents.version + 1,
                updated_at = $12",
        )
        .bind(&document.id)
        .bind(&document.collection)
        .bind(&document.source)
        .bind(&document.title)
        .bind(&document.format)
        .bind(&document.content_hash)
        .bind(&document.pipeline)
        .bind(&document.text)
        .bind(&document.language)
        .bind(serde_json::to_string(&document.tags).map_err(json_error)?)
        .bind(document.modified)
        .bind(now())
        .bind(serde_json::to_string(&document.groups).map_err(json_error)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let previous: Vec<String> =
            sqlx::query_scalar("SELECT id FROM chunks WHERE document_id = $1")
                .bind(&document.id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        sqlx::query("DELETE FROM chunks WHERE document_id = $1")
            .bind(&document.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for chunk in chunks {
            let heading_path = serde_json::to_string(&chunk.heading_path).map_err(json_error)?;
            sqlx::query(
                "INSERT INTO chunks (id, document_id, ordinal, start_char, end_char, heading_path, text, token_count, page)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&chunk.id)
            .bind(&chunk.document_id)
            .bind(chunk.ordinal as i64)
            .bind(chunk.start as i64)
            .bind(chunk.end as i64)
            .bind(heading_path)
            .bind(&chunk.text)
            .bind(chunk.token_count as i64)
            .bind(chunk.page.map(i64::from))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(previous)
    }

    /// Marks a document `active`: the vector index holds all of its chunks.
    pub async fn mark_active(&self, id: &str) -> VerityResult<()> {
        sqlx::query("UPDATE documents SET status = 'active' WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn documents_in_collection(
        &self,
        collection: &str,
    ) -> VerityResult<Vec<StoredDocument>> {
        let rows = sqlx::query(
            "SELECT id, source, title, version, status, language, tags, modified, access_groups FROM documents WHERE collection = $1 ORDER BY source",
        )
        .bind(collection)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredDocument {
                    id: row.get("id"),
                    source: row.get("source"),
                    title: row.get("title"),
                    version: row.get("version"),
                    active: row.get::<String, _>("status") == "active",
                    language: row.get("language"),
                    tags: serde_json::from_str(row.get::<&str, _>("tags")).map_err(json_error)?,
                    groups: serde_json::from_str(row.get::<&str, _>("access_groups"))
                        .map_err(json_error)?,
                    modified: row.get("modified"),
                })
            })
            .collect()
    }

    /// Takes the write lease of a document for `holder` until `until_ms` (Unix milliseconds)
    /// if nobody holds it, its lease ran out, or `holder` holds it already (a renewal);
    /// whether it did.
    pub async fn try_lease_document(
        &self,
        document_id: &str,
        holder: &str,
        until_ms: i64,
    ) -> VerityResult<bool> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let taken = sqlx::query(
            "INSERT INTO document_locks (document_id, holder, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (document_id) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
             WHERE document_locks.lease_until < $4 OR document_locks.holder = excluded.holder",
        )
        .bind(document_id)
        .bind(holder)
        .bind(until_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(taken.rows_affected() > 0)
    }

    /// Gives a document's write lease back (nothing if `holder` no longer holds it).
    pub async fn release_document_lease(
        &self,
        document_id: &str,
        holder: &str,
    ) -> VerityResult<()> {
        sqlx::query("DELETE FROM document_locks WHERE document_id = $1 AND holder = $2")
            .bind(document_id)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Deletes a document and its chunks, and withdraws its text from the answer traces that
    /// drew on it.
    pub async fn delete_document(&self, id: &str) -> VerityResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        Store::withdraw_from_traces(&mut tx, DeletedDocuments::One(id)).await?;
        sqlx::query("DELETE FROM documents WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// The chunks of a document, in order.
    pub async fn chunks_of(&self, document_id: &str) -> VerityResult<Vec<Chunk>> {
        let rows = sqlx::query(
            "SELECT id, document_id, ordinal, start_char, end_char, heading_path, text, token_count, page
             FROM chunks WHERE document_id = $1 ORDER BY ordinal",
        )
        .bind(document_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(Chunk {
                    id: row.get("id"),
                    document_id: row.get("document_id"),
                    ordinal: row.get::<i64, _>("ordinal") as u32,
                    start: row.get::<i64, _>("start_char") as usize,
                    end: row.get::<i64, _>("end_char") as usize,
                    heading_path: serde_json::from_str(row.get::<&str, _>("heading_path"))
                        .map_err(json_error)?,
                    text: row.get("text"),
                    token_count: row.get::<i64, _>("token_count") as u32,
                    page: row
                        .get::<Option<i64>, _>("page")
                        .and_then(|p| u32::try_from(p).ok()),
                })
            })
            .collect()
    }

    /// The normalised text of a document (what chunk and citation spans point into).
    pub async fn document_text(&self, id: &str) -> VerityResult<Option<String>> {
        sqlx::query_scalar("SELECT text FROM documents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
