//! Documents and answer traces through the API: [`Documents`] and [`AnswerTraces`] for
//! [`Verity`], and the recording of every answer's trace.
//!
//! Who may do what is decided in [`verity_core::policy`]; this module applies it:
//! - a document the caller may not read does not exist for it: every call answers `NotFound`,
//!   exactly as for an unknown id; one it reads but may not write is a 403 on delete;
//! - an uploaded document's source is `upload:/<groups>/<file name>` (`*` for no groups), so
//!   callers of different groups uploading the same file name get different documents; the
//!   pipeline also refuses to replace a stored document its writer may not write;
//! - an answer's trace belongs to whoever asked, and to the admins of its collection who may
//!   read every document it names; only the asker rates it.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use verity_core::{
    AnswerEvent, AnswerStream, AnswerTrace, AnswerTraces, Caller, DocumentDetail, DocumentInfo,
    DocumentPage, DocumentQuery, Documents, Feedback, PUBLIC_GROUP, Rating, RetrievedChunk, Scope,
    TraceCandidate, Upload, UploadStatus, UploadedDocument, VerityError, VerityResult, document_id,
    policy, validate_collection_name,
};

use crate::Verity;
use crate::pipeline::{FileOutcome, IngestInput, IngestOptions, Quiet};

/// Traces older than `traces.retention_days` are deleted this often while a server runs.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn document_not_found(id: &str) -> VerityError {
    VerityError::NotFound {
        what: "document",
        name: id.to_string(),
    }
}

/// The file name an upload goes by: its last path component, checked.
pub(crate) fn upload_file_name(name: &str) -> VerityResult<String> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().count() <= 255
        && !name.chars().any(char::is_control);
    if valid {
        Ok(name.to_string())
    } else {
        Err(VerityError::invalid(
            "file",
            format!("the file name {name:?} is invalid: give a plain name such as \"policy.md\""),
        ))
    }
}

/// The source an upload is stored under: one namespace per set of groups.
pub(crate) fn upload_source(groups: &[String], file_name: &str) -> String {
    let mut sorted = groups.to_vec();
    sorted.sort();
    sorted.dedup();
    let namespace = if sorted.is_empty() {
        PUBLIC_GROUP.to_string()
    } else {
        sorted.join("+")
    };
    format!("upload:/{namespace}/{file_name}")
}

impl Verity {
    /// The collection a request names (or the default), if the caller may use it and it
    /// exists; a forbidden collection answers like an unknown one.
    pub(crate) async fn usable_collection(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> VerityResult<String> {
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| self.config.query.default_collection.clone());
        validate_collection_name(&name)?;
        if !caller.may_use_collection(&name) || !self.store.collection_exists(&name).await? {
            return Err(VerityError::NotFound {
                what: "collection",
                name,
            });
        }
        Ok(name)
    }

    /// A document the caller may read.
    async fn readable_document(&self, caller: &Caller, id: &str) -> VerityResult<DocumentInfo> {
        match self.store.document(id).await? {
            Some(document)
                if policy::may_read_document(caller, &document.collection, &document.groups) =>
            {
                Ok(document)
            }
            _ => Err(document_not_found(id)),
        }
    }

    /// The groups an upload or a job's documents get ([`policy::new_document_groups`]).
    pub(crate) async fn upload_groups(
        &self,
        caller: &Caller,
        collection: &str,
        asked: Option<Vec<String>>,
    ) -> VerityResult<Vec<String>> {
        let default = match asked {
            Some(_) => Vec::new(),
            None => self.store.collection_default_groups(collection).await?,
        };
        policy::new_document_groups(caller, asked, default)
    }

    /// Streams `events` on, giving the answer its id and recording its trace (before `done`
    /// goes out, so the trace can be read as soon as the answer is complete). A client that
    /// goes away drops the inner stream at once, which cancels the generation behind it.
    pub(crate) fn traced(&self, mut events: AnswerStream, mut trace: AnswerTrace) -> AnswerStream {
        let (sender, stream) = tokio::sync::mpsc::channel(64);
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                let mut event = tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => event,
                        None => return,
                    },
                    () = sender.closed() => return,
                };
                match &mut event {
                    AnswerEvent::Grounding(answer) => {
                        answer.id.clone_from(&trace.id);
                        trace.generator.clone_from(&answer.generator);
                        trace.prompt_hash.clone_from(&answer.prompt_hash);
                        trace.answer = answer.clone();
                    }
                    AnswerEvent::Done(timings) => {
                        trace.timings = *timings;
                        trace.created_at = now();
                        if let Err(error) = store.insert_trace(&trace).await {
                            tracing::warn!(%error, "cannot record the answer's trace");
                        }
                    }
                    _ => {}
                }
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        });
        stream
    }
}

impl Verity {
    /// Deletes the traces older than `traces.retention_days`; how many.
    pub async fn delete_expired_traces(&self) -> VerityResult<u64> {
        let before = now() - i64::from(self.config.trace_retention_days) * 86_400;
        self.store.delete_traces_before(before).await
    }
}

/// Keeps trace retention running while `verity` is served: expired traces are deleted at once
/// and then every [`PRUNE_EVERY`], whether or not anyone asks (retention that ran only when a
/// new answer was written kept every trace of a server nobody asked any more). Stops when
/// `verity` is dropped.
pub fn start_trace_retention(verity: &Arc<Verity>) {
    let verity: Weak<Verity> = Arc::downgrade(verity);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            every.tick().await;
            let Some(verity) = verity.upgrade() else {
                return;
            };
            match verity.delete_expired_traces().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired answer traces deleted"),
                Err(error) => tracing::warn!(%error, "cannot delete expired answer traces"),
            }
        }
    });
}

/// The candidates of a trace: what retrieval found, best first.
pub(crate) fn candidates(passages: &[RetrievedChunk]) -> Vec<TraceCandidate> {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| TraceCandidate {
            rank: i as u32 + 1,
            document_id: p.document_id.clone(),
            chunk_id: p.chunk_id.clone(),
            title: p.title.clone(),
            score: p.score,
            similarity: p.similarity,
        })
        .collect()
}

#[async_trait]
impl Documents for Verity {
    async fn list_documents(
        &self,
        caller: &Caller,
        query: DocumentQuery,
    ) -> VerityResult<DocumentPage> {
        caller.require(Scope::Query)?;
        let collection = self
            .usable_collection(caller, query.collection.as_deref())
            .await?;
        let mut after = match &query.cursor {
            Some(cursor) => Some(
                hex::decode(cursor)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        VerityError::invalid(
                            "cursor",
                            "cursor is not one this server gave: pass a page's next_cursor as it is",
                        )
                    })?,
            ),
            None => None,
        };
        // Documents the caller may not read are skipped, so a page is filled from as many
        // store pages as it takes.
        let mut documents = Vec::with_capacity(query.limit);
        let batch = (query.limit * 2).max(100);
        let mut more = false;
        'pages: loop {
            let page = self
                .store
                .documents_page(&collection, after.as_deref(), batch)
                .await?;
            let exhausted = page.len() < batch;
            for document in page {
                after = Some(document.source.clone());
                if !policy::groups_readable(caller.groups.as_deref(), &document.groups) {
                    continue;
                }
                if documents.len() == query.limit {
                    more = true;
                    break 'pages;
                }
                documents.push(document);
            }
            if exhausted {
                break;
            }
        }
        let next_cursor = more
            .then(|| {
                documents
                    .last()
                    .map(|d: &DocumentInfo| hex::encode(&d.source))
            })
            .flatten();
        Ok(DocumentPage {
            documents,
            next_cursor,
        })
    }

    async fn get_document(&self, caller: &Caller, id: &str) -> VerityResult<DocumentDetail> {
        caller.require(Scope::Query)?;
        let document = self.readable_document(caller, id).await?;
        let chunks = self.store.chunks_of(id).await?;
        Ok(DocumentDetail { document, chunks })
    }

    async fn upload_document(
        &self,
        caller: &Caller,
        upload: Upload,
    ) -> VerityResult<UploadedDocument> {
        caller.require(Scope::Ingest)?;
        let collection = self
            .usable_collection(caller, upload.collection.as_deref())
            .await?;
        let file_name = upload_file_name(&upload.file_name)?;
        let groups = self
            .upload_groups(caller, &collection, upload.groups)
            .await?;
        let source = upload_source(&groups, &file_name);
        let id = document_id(&collection, &source);
        let _writing = self.document_locks.lock(&id).await?;
        let options = IngestOptions::new(&collection)
            .with_groups(groups)
            .with_tags(upload.tags)
            .with_optimize(false);
        let input = IngestInput::Bytes {
            file_name: file_name.clone(),
            source,
            bytes: upload.bytes,
        };
        let outcome = self
            .ingest(caller, input, &options, &Quiet)
            .await?
            .outcome()
            .map_err(|reason| {
                VerityError::Unprocessable(format!("{file_name} cannot be ingested: {reason}"))
            })?;
        let status = match outcome {
            FileOutcome::Added => UploadStatus::Added,
            FileOutcome::Unchanged => UploadStatus::Unchanged,
            _ => UploadStatus::Updated,
        };
        let document =
            self.store.document(&id).await?.ok_or_else(|| {
                VerityError::internal("ingest", "an uploaded document is not stored")
            })?;
        Ok(UploadedDocument { document, status })
    }

    async fn delete_document(&self, caller: &Caller, id: &str) -> VerityResult<DocumentInfo> {
        caller.require(Scope::Ingest)?;
        // Not while an upload or a worker writes it: its points would outlive its document.
        let _deleting = self.document_locks.lock(id).await?;
        let document = self.readable_document(caller, id).await?;
        if !policy::may_write_document(caller, &document.collection, &document.groups) {
            return Err(VerityError::Forbidden(format!(
                "{} has groups this key may not write, so it may not delete it",
                document.source
            )));
        }
        // Index first, made durable, then the store: a crash in between leaves a document
        // without vectors (found by reconcile), never vectors without their document.
        self.index.delete_document_chunks(id, &[]).await?;
        self.index.persist().await?;
        self.store.delete_document(id).await?;
        Ok(document)
    }
}

#[async_trait]
impl AnswerTraces for Verity {
    async fn answer_trace(&self, caller: &Caller, id: &str) -> VerityResult<AnswerTrace> {
        caller.require(Scope::Query)?;
        let not_found = || VerityError::NotFound {
            what: "answer",
            name: id.to_string(),
        };
        let Some(trace) = self.store.trace(id).await? else {
            return Err(not_found());
        };
        // The groups of the documents it names, looked up only for someone other than the
        // asker (`None`: no longer stored).
        let mut candidate_groups = Vec::new();
        if trace.caller != caller.subject {
            for candidate in &trace.candidates {
                let groups = self
                    .store
                    .document(&candidate.document_id)
                    .await?
                    .map(|d| d.groups);
                candidate_groups.push(groups);
            }
        }
        if policy::may_read_trace(caller, &trace.caller, &trace.collection, &candidate_groups) {
            Ok(trace)
        } else {
            Err(not_found())
        }
    }

    async fn give_feedback(
        &self,
        caller: &Caller,
        answer_id: &str,
        rating: Rating,
        comment: Option<String>,
    ) -> VerityResult<Feedback> {
        caller.require(Scope::Query)?;
        // Only the asker rates its answer; whoever may not even read it gets the 404 of an
        // unknown id.
        let trace = self.answer_trace(caller, answer_id).await?;
        if !policy::may_rate_answer(caller, &trace.caller) {
            return Err(VerityError::Forbidden(
                "only the caller that asked may rate an answer".to_string(),
            ));
        }
        self.store
            .set_feedback(answer_id, rating, comment.as_deref())
            .await?
            .ok_or_else(|| VerityError::NotFound {
                what: "answer",
                name: answer_id.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_of_different_groups_never_share_a_source() {
        let hr = upload_source(&["hr".into()], "policy.md");
        let both = upload_source(&["it".into(), "hr".into()], "policy.md");
        let public = upload_source(&[], "policy.md");
        assert_eq!(hr, "upload:/hr/policy.md");
        assert_eq!(both, "upload:/hr+it/policy.md");
        assert_eq!(public, "upload:/*/policy.md");
        assert_eq!(
            both,
            upload_source(&["hr".into(), "it".into()], "policy.md")
        );
    }

    #[test]
    fn upload_names_lose_their_directories_and_bad_names_are_refused() {
        assert_eq!(upload_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(upload_file_name("C:\\docs\\leave.md").unwrap(), "leave.md");
        assert!(upload_file_name("").is_err());
        assert!(upload_file_name("dir/").is_err());
        assert!(upload_file_name("..").is_err());
        assert!(upload_file_name("a\u{0}b.md").is_err());
    }
}
