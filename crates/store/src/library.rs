//! Documents as the API lists and reads them, collections' default access groups, and answer
//! traces with their feedback.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use verity_core::{
    AnswerTrace, DocumentFormat, DocumentInfo, DocumentStatus, Feedback, Language, Rating,
    VerityError, VerityResult,
};

use crate::store::{Store, db_error, json_error, now};

/// The columns of a document listing, with its chunk count (a macro, so queries stay literal).
macro_rules! document_columns {
    () => {
        "d.id, d.collection, d.source, d.title, d.format, d.language, d.tags, d.access_groups, \
         d.version, d.status, d.modified, \
         (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id) AS chunk_count"
    };
}

/// The columns of an answer trace, for [`answer_trace`].
macro_rules! trace_columns {
    () => {
        "id, caller, collection, question, mode, candidates, prompt_hash, generator, answer, \
         timings, feedback_rating, feedback_comment, feedback_at, created_at, redacted_at"
    };
}

fn answer_trace(row: &sqlx::any::AnyRow) -> VerityResult<AnswerTrace> {
    let rating: Option<String> = row.get("feedback_rating");
    let feedback = match rating.as_deref() {
        Some("up") => Some(Rating::Up),
        Some("down") => Some(Rating::Down),
        _ => None,
    }
    .map(|rating| Feedback {
        rating,
        comment: row.get("feedback_comment"),
        at: row.get::<Option<i64>, _>("feedback_at").unwrap_or_default(),
    });
    let mut answer: verity_core::Answer =
        serde_json::from_str(row.get::<&str, _>("answer")).map_err(json_error)?;
    let prompt_hash: Option<String> = row.get("prompt_hash");
    answer.prompt_hash.clone_from(&prompt_hash);
    Ok(AnswerTrace {
        id: row.get("id"),
        caller: row.get("caller"),
        collection: row.get("collection"),
        question: row.get("question"),
        mode: parse_column(row, "mode", |m| m.parse().ok())?,
        candidates: serde_json::from_str(row.get::<&str, _>("candidates")).map_err(json_error)?,
        prompt_hash,
        generator: row.get("generator"),
        answer,
        timings: serde_json::from_str(row.get::<&str, _>("timings")).map_err(json_error)?,
        feedback,
        created_at: row.get("created_at"),
        redacted_at: row.get("redacted_at"),
    })
}

/// A text column read as the enum it stores; a value no version of Verity wrote is an error
/// that names it.
fn parse_column<T>(
    row: &sqlx::any::AnyRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> VerityResult<T> {
    let value: String = row.get(column);
    parse(&value).ok_or_else(|| {
        VerityError::internal(
            "metadata store",
            format!("the column {column} holds {value:?}, which this version does not know"),
        )
    })
}

fn document_info(row: &sqlx::any::AnyRow) -> VerityResult<DocumentInfo> {
    Ok(DocumentInfo {
        id: row.get("id"),
        collection: row.get("collection"),
        source: row.get("source"),
        title: row.get("title"),
        format: parse_column(row, "format", DocumentFormat::parse)?,
        language: parse_column(row, "language", Language::from_code)?,
        tags: serde_json::from_str(row.get::<&str, _>("tags")).map_err(json_error)?,
        groups: serde_json::from_str(row.get::<&str, _>("access_groups")).map_err(json_error)?,
        version: row.get("version"),
        status: parse_column(row, "status", DocumentStatus::parse)?,
        modified: row.get("modified"),
        chunk_count: row.get::<i64, _>("chunk_count") as usize,
    })
}

impl Store {
    /// Creates a collection whose documents get `default_groups` when their ingest names none;
    /// `false` (and nothing changed) if it existed.
    pub async fn create_collection(
        &self,
        name: &str,
        default_groups: &[String],
    ) -> VerityResult<bool> {
        let groups = serde_json::to_string(default_groups).map_err(json_error)?;
        let inserted = sqlx::query(
            "INSERT INTO collections (name, default_groups) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(groups)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(inserted.rows_affected() > 0)
    }

    /// The groups a collection gives documents ingested without groups (empty if it does not
    /// exist).
    pub async fn collection_default_groups(&self, name: &str) -> VerityResult<Vec<String>> {
        let groups: Option<String> =
            sqlx::query_scalar("SELECT default_groups FROM collections WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
        match groups {
            Some(json) => serde_json::from_str(&json).map_err(json_error),
            None => Ok(Vec::new()),
        }
    }

    /// One document, without its text.
    pub async fn document(&self, id: &str) -> VerityResult<Option<DocumentInfo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents d WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(document_info).transpose()
    }

    /// Up to `limit` documents of a collection whose source sorts after `after`, by source.
    pub async fn documents_page(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> VerityResult<Vec<DocumentInfo>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents d WHERE d.collection = $1 AND d.source > $2 ORDER BY d.source LIMIT $3"
        ))
        .bind(collection)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(document_info).collect()
    }

    /// Keeps an answer's trace, with the documents it drew on (so that deleting one of them
    /// withdraws its text from the trace: [`Store::withdraw_from_traces`]).
    pub async fn insert_trace(&self, trace: &AnswerTrace) -> VerityResult<()> {
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO answer_traces (id, caller, collection, question, mode, candidates, prompt_hash, generator, answer, timings, created_at, redacted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&trace.id)
        .bind(&trace.caller)
        .bind(&trace.collection)
        .bind(&trace.question)
        .bind(trace.mode.as_str())
        .bind(serde_json::to_string(&trace.candidates).map_err(json_error)?)
        .bind(&trace.prompt_hash)
        .bind(&trace.generator)
        .bind(serde_json::to_string(&trace.answer).map_err(json_error)?)
        .bind(serde_json::to_string(&trace.timings).map_err(json_error)?)
        .bind(trace.created_at)
        .bind(trace.redacted_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let sources: BTreeSet<&str> = trace
            .candidates
            .iter()
            .map(|c| c.document_id.as_str())
            .chain(
                trace
                    .answer
                    .citations
                    .iter()
                    .map(|c| c.document_id.as_str()),
            )
            .collect();
        // A document deleted while the answer was written is withdrawn here: its deletion ran
        // before this trace existed.
        let mut gone = Vec::new();
        for document_id in sources {
            sqlx::query("INSERT INTO answer_trace_sources (trace_id, document_id) VALUES ($1, $2)")
                .bind(&trace.id)
                .bind(document_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            let stored: Option<String> =
                sqlx::query_scalar("SELECT id FROM documents WHERE id = $1")
                    .bind(document_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            if stored.is_none() {
                gone.push(document_id);
            }
        }
        if !gone.is_empty() {
            let mut withdrawn = trace.clone();
            for document_id in gone {
                withdrawn.forget_document(document_id, now());
            }
            save_withdrawn(&mut tx, &withdrawn).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    pub async fn trace(&self, id: &str) -> VerityResult<Option<AnswerTrace>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            trace_columns!(),
            " FROM answer_traces WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(answer_trace).transpose()
    }

    /// Records feedback on an answer; `None` if there is no such trace.
    pub async fn set_feedback(
        &self,
        id: &str,
        rating: Rating,
        comment: Option<&str>,
    ) -> VerityResult<Option<Feedback>> {
        let at = now();
        let updated = sqlx::query(
            "UPDATE answer_traces SET feedback_rating = $2, feedback_comment = $3, feedback_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(rating.as_str())
        .bind(comment)
        .bind(at)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok((updated.rows_affected() > 0).then(|| Feedback {
            rating,
            comment: comment.map(str::to_string),
            at,
        }))
    }

    /// Deletes traces created before `before` (seconds since the Unix epoch); how many.
    pub async fn delete_traces_before(&self, before: i64) -> VerityResult<u64> {
        let deleted = sqlx::query("DELETE FROM answer_traces WHERE created_at < $1")
            .bind(before)
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        Ok(deleted.rows_affected())
    }

    /// Withdraws from the traces the text of the documents about to be deleted (the
    /// document `id`, or every document of the collection `name`), in the transaction that
    /// deletes them: an answer's trace must not keep, and show, what its documents' deletion
    /// removed ([`AnswerTrace::forget_document`]). Its first statement writes, so that on
    /// SQLite the transaction holds the write lock from its start.
    pub(crate) async fn withdraw_from_traces(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        deleted: DeletedDocuments<'_>,
    ) -> VerityResult<()> {
        let sources: Vec<(String, String)> = match deleted {
            DeletedDocuments::One(id) => sqlx::query_as(
                "DELETE FROM answer_trace_sources WHERE document_id = $1 RETURNING trace_id, document_id",
            )
            .bind(id),
            DeletedDocuments::OfCollection(name) => sqlx::query_as(
                "DELETE FROM answer_trace_sources
                 WHERE document_id IN (SELECT id FROM documents WHERE collection = $1)
                 RETURNING trace_id, document_id",
            )
            .bind(name),
        }
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
        let mut by_trace: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (trace_id, document_id) in sources {
            by_trace.entry(trace_id).or_default().push(document_id);
        }
        let at = now();
        for (trace_id, documents) in by_trace {
            let row = sqlx::query(concat!(
                "SELECT ",
                trace_columns!(),
                " FROM answer_traces WHERE id = $1"
            ))
            .bind(&trace_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
            let Some(mut trace) = row.as_ref().map(answer_trace).transpose()? else {
                continue;
            };
            let mut changed = false;
            for document_id in &documents {
                changed |= trace.forget_document(document_id, at);
            }
            if !changed {
                continue;
            }
            save_withdrawn(tx, &trace).await?;
        }
        Ok(())
    }
}

/// Writes back what [`AnswerTrace::forget_document`] changed in a trace.
async fn save_withdrawn(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    trace: &AnswerTrace,
) -> VerityResult<()> {
    sqlx::query(
        "UPDATE answer_traces SET candidates = $2, answer = $3, redacted_at = $4 WHERE id = $1",
    )
    .bind(&trace.id)
    .bind(serde_json::to_string(&trace.candidates).map_err(json_error)?)
    .bind(serde_json::to_string(&trace.answer).map_err(json_error)?)
    .bind(trace.redacted_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// What a deletion removes, for [`Store::withdraw_from_traces`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum DeletedDocuments<'a> {
    One(&'a str),
    OfCollection(&'a str),
}
