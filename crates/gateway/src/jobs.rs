//! `POST /v1/ingest/jobs`, `GET /v1/ingest/jobs/{id}`, `GET /v1/ingest/jobs/{id}/events` (SSE)
//! and `DELETE /v1/ingest/jobs/{id}`.
//!
//! Key decision: the gateway only hands the uploaded files' bytes to the service as they arrive
//! (the service stores them, within the per-file and per-job limits) and watches the store;
//! the workers do the ingesting. Progress
//! comes from polling the job (every 250 ms while it moves, slowing to every 2 s while it
//! does not), so it works whichever process runs the worker; each caller watches at most
//! [`MAX_WATCHES_PER_CALLER`] jobs at once, and the server [`MAX_WATCHES`].

// Errors here end the request; their size does not matter next to an HTTP round trip.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use verity_core::{
    Caller, IngestJob, IngestJobs, JobCreation, JobInput, Language, NewIngestJob, Scope,
    UploadLimits, UploadReceiver, VerityError,
};

use crate::auth::Authenticated;
use crate::documents::{
    MAX_FIELD_BYTES, json_body, multipart_error, read_body, split_list, too_large,
};
use crate::error::ApiError;
use crate::error::ErrorCode;

/// A JSON job request (a list of paths) is small.
const MAX_JSON_BYTES: usize = 1024 * 1024;
const MAX_KEY_CHARS: usize = 255;
/// How often a watched job is read again while it moves; each read that finds nothing new
/// doubles the wait, up to [`SLOWEST_POLL`].
const POLL: Duration = Duration::from_millis(250);
const SLOWEST_POLL: Duration = Duration::from_secs(2);
/// Event streams one caller may hold open at once: each reads the store every few hundred
/// milliseconds, so a client opening them without end would tie up the store's connections.
pub const MAX_WATCHES_PER_CALLER: usize = 4;
/// Event streams open at once on this server, all callers together.
pub const MAX_WATCHES: usize = 256;

/// The job event streams open now, per caller (see [`MAX_WATCHES_PER_CALLER`]).
#[derive(Default)]
pub struct JobWatchers {
    open: Mutex<HashMap<String, usize>>,
}

/// One open event stream; dropping it (the stream ended or its client left) frees the place.
pub struct WatchPermit {
    watchers: Arc<JobWatchers>,
    subject: String,
}

impl JobWatchers {
    /// A place for one more stream of `subject`, or a 429 naming the limit reached.
    pub fn admit(self: &Arc<Self>, subject: &str) -> Result<WatchPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(subject).copied().unwrap_or(0);
        let refusal = if mine >= MAX_WATCHES_PER_CALLER {
            Some(format!(
                "this caller already watches {mine} jobs' events, the limit: close one, or read \
                 GET /v1/ingest/jobs/{{id}} instead"
            ))
        } else if total >= MAX_WATCHES {
            Some(format!(
                "the server already streams {total} jobs' events, its limit; retry in 5 s, or \
                 read GET /v1/ingest/jobs/{{id}} instead"
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            let mut error = ApiError::new(ErrorCode::Busy, message)
                .with_details(json!({"retry_after_seconds": 5}));
            error.retry_after = Some(5);
            return Err(error);
        }
        *open.entry(subject.to_string()).or_default() += 1;
        Ok(WatchPermit {
            watchers: Arc::clone(self),
            subject: subject.to_string(),
        })
    }
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut open = self.watchers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.subject) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.subject);
            }
        }
    }
}
/// Silence before an SSE comment goes out, so that a watcher of a job that never moves is not
/// polled for ever once it has left (see [`crate::sse::with_heartbeat`]).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A job of files on the server, sent as JSON.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobPathsRequest {
    collection: Option<String>,
    /// Files or directories under `ingest.allowed_root` (relative paths are relative to it).
    paths: Vec<String>,
    groups: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
    language: Option<Language>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    VerityError::invalid(field, message).into()
}

fn idempotency_key(http: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = http.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !valid {
        return Err(invalid(
            "Idempotency-Key",
            format!(
                "the Idempotency-Key header must be 1-{MAX_KEY_CHARS} printable ASCII characters"
            ),
        ));
    }
    Ok(Some(key.to_string()))
}

/// Creates a job: `multipart/form-data` with `file` parts (and optional `collection`,
/// `groups`, `tags`, `language` fields), or JSON `{"paths": [...], "collection"?, "groups"?,
/// "tags"?, "language"?}`. 201 with the job; 200 with the earlier job for a retry under the
/// same `Idempotency-Key`; 409 for a different request under that key.
#[utoipa::path(post, path = "/v1/ingest/jobs", tag = "ingest jobs",
    summary = "Queue files for ingestion (ingest scope)",
    description = "multipart/form-data with one or more `file` parts (each within server.max_upload_bytes, all within server.max_job_upload_bytes) and optional `collection`, `groups`, `tags` (comma-separated) and `language` fields; each file is ingested under `upload:/<groups>/<file name>`. Or JSON with `paths` on the server, allowed only under ingest.allowed_root. The workers (`verity serve` runs one) ingest the files one at a time: each document is answerable as soon as its file is indexed. With an `Idempotency-Key` header, the same request again returns the same job (200).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters; one job per caller and key")),
    request_body(content = JobPathsRequest, description = "JSON, or multipart/form-data"),
    responses((status = 201, description = "The job, queued", body = IngestJob),
              (status = 200, description = "The job created earlier under this Idempotency-Key", body = IngestJob),
              (status = 400, description = "Invalid field, no file, a file name twice, a path that does not exist", body = crate::openapi::ErrorEnvelope),
              (status = 403, description = "No ingest scope, groups the key does not have, a path outside ingest.allowed_root, or no root configured", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown collection", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "`idempotency_conflict`: the key was used for a different request", body = crate::openapi::ErrorEnvelope),
              (status = 413, description = "A file over server.max_upload_bytes, or all over server.max_job_upload_bytes", body = crate::openapi::ErrorEnvelope),
              (status = 415, description = "Neither multipart/form-data nor JSON", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    http: HttpRequest,
    caller: Authenticated,
    jobs: web::Data<dyn IngestJobs>,
    limits: web::Data<UploadLimits>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Refused before the body is read; the service decides again (verity-service).
    let caller = caller.require(Scope::Ingest)?;
    let key = idempotency_key(&http)?;
    let content_type = http
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let job = if content_type.starts_with("multipart/form-data") {
        let uploads = jobs.receive_uploads(&caller, *limits.get_ref())?;
        read_multipart(&http, payload, uploads, key).await?
    } else if content_type.starts_with("application/json") {
        let body = read_body(payload, MAX_JSON_BYTES, || {
            too_large(format!(
                "a JSON job request is limited to {MAX_JSON_BYTES} bytes"
            ))
        })
        .await?;
        let request: JobPathsRequest = json_body(
            &body,
            "a job request {\"paths\", \"collection\"?, \"groups\"?, \"tags\"?, \"language\"?} (URLs are not supported)",
        )?;
        NewIngestJob {
            collection: request.collection,
            groups: request.groups,
            tags: request.tags,
            language: request.language,
            input: JobInput::Paths(request.paths),
            idempotency_key: key,
        }
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the files as multipart/form-data with \"file\" parts, or JSON {\"paths\": [...]} for files on the server",
        ));
    };
    match jobs.create_job(&caller, job).await? {
        JobCreation::Created(job) => Ok(HttpResponse::Created().json(job)),
        JobCreation::Existing(job) => Ok(HttpResponse::Ok().json(job)),
        JobCreation::KeyConflict { job_id } => Err(ApiError::new(ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used for a different request: send the same request to get its job, or use a new key",
        )
        .with_details(json!({"job_id": job_id}))),
    }
}

/// Reads the form, handing each file's bytes to the service as they arrive.
async fn read_multipart(
    http: &HttpRequest,
    payload: web::Payload,
    mut uploads: Box<dyn UploadReceiver>,
    key: Option<String>,
) -> Result<NewIngestJob, ApiError> {
    let mut form = actix_multipart::Multipart::new(http.headers(), payload.into_inner());
    let (mut collection, mut groups, mut tags, mut language) = (None, None, Vec::new(), None);
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| multipart_error(&e))?;
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_string)
                .ok_or_else(|| invalid("file", "a file part has no filename"))?;
            uploads.begin_file(&file_name).await?;
            while let Some(chunk) = field.next().await {
                uploads
                    .write(&chunk.map_err(|e| multipart_error(&e))?)
                    .await?;
            }
            uploads.end_file().await?;
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| multipart_error(&e))?;
            if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
                return Err(invalid(
                    &name,
                    format!("the field {name:?} is over {MAX_FIELD_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(&name, format!("the field {name:?} is not UTF-8 text")))?;
        match name.as_str() {
            "collection" => collection = Some(text.trim().to_string()),
            "groups" => groups = Some(split_list(&text)),
            "tags" => tags = split_list(&text),
            "language" => {
                language = Some(
                    serde_json::from_value::<Language>(json!(text.trim())).map_err(|_| {
                        invalid(
                            "language",
                            format!("unknown language {:?}: use en, es or pt", text.trim()),
                        )
                    })?,
                )
            }
            other => {
                return Err(invalid(
                    other,
                    format!(
                        "unknown field {other:?}: send file parts, and optionally collection, groups, tags, language"
                    ),
                ));
            }
        }
    }
    Ok(NewIngestJob {
        collection,
        groups,
        tags,
        language,
        input: JobInput::Uploads(uploads),
        idempotency_key: key,
    })
}

/// A job id from the path; anything that is not one is an unknown job.
fn job_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().map_err(|_| {
        VerityError::NotFound {
            what: "ingest job",
            name: id.to_string(),
        }
        .into()
    })
}

#[utoipa::path(get, path = "/v1/ingest/jobs/{id}", tag = "ingest jobs",
    summary = "A job: its state, counts by file state, and every file's state",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = IngestJob),
              (status = 404, description = "Unknown, or another caller's", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get(
    Authenticated(caller): Authenticated,
    jobs: web::Data<dyn IngestJobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(jobs.ingest_job(&caller, job_id(&id)?).await?))
}

#[utoipa::path(delete, path = "/v1/ingest/jobs/{id}", tag = "ingest jobs",
    summary = "Cancel a job: queued files become cancelled, a running file finishes",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = IngestJob),
              (status = 404, description = "Unknown, or another caller's", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn cancel(
    Authenticated(caller): Authenticated,
    jobs: web::Data<dyn IngestJobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(jobs.cancel_job(&caller, job_id(&id)?).await?))
}

fn event(name: &str, data: &serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A watched job: what was last sent, and the events still to send.
struct Watch {
    jobs: Arc<dyn IngestJobs>,
    caller: Caller,
    id: i64,
    next: Option<IngestJob>,
    last: Option<IngestJob>,
    queue: VecDeque<String>,
    finished: bool,
    /// Reads in a row that found nothing new (the wait before the next one doubles each time).
    idle_reads: u32,
    _permit: WatchPermit,
}

impl Watch {
    /// The events between the last snapshot and `job`.
    fn compare(&mut self, job: IngestJob) {
        for (n, file) in job.files.iter().enumerate() {
            let before = self.last.as_ref().and_then(|last| last.files.get(n));
            if before.is_none_or(|b| b.state != file.state || b.reason != file.reason) {
                let mut data =
                    json!({"name": file.name, "source": file.source, "state": file.state});
                if let Some(reason) = &file.reason {
                    data["reason"] = json!(reason);
                }
                self.queue.push_back(event("file", &data));
            }
        }
        if self
            .last
            .as_ref()
            .is_none_or(|last| last.counts != job.counts || last.state != job.state)
        {
            self.queue.push_back(event(
                "progress",
                &json!({"state": job.state, "counts": job.counts}),
            ));
        }
        if job.counts.pending() == 0 {
            self.queue.push_back(event(
                "done",
                &json!({"state": job.state, "counts": job.counts}),
            ));
            self.finished = true;
        }
        self.last = Some(job);
    }
}

/// Server-Sent Events: `file` (a file's state changed: `{name, source, state, reason?}`),
/// `progress` (`{state, counts}` when they change), `done` (nothing queued or running any
/// more; the stream ends). A client that leaves drops the stream, and the polling with it.
#[utoipa::path(get, path = "/v1/ingest/jobs/{id}/events", tag = "ingest jobs",
    summary = "A job's progress as Server-Sent Events",
    description = "`file` `{name, source, state, reason?}` for every file state change (first for every file), `progress` `{state, counts}` when the counts change, and `done` `{state, counts}` once nothing is queued or running; then the stream ends.",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "text/event-stream"),
              (status = 404, description = "Unknown, or another caller's", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn events(
    Authenticated(caller): Authenticated,
    jobs: web::Data<dyn IngestJobs>,
    watchers: web::Data<JobWatchers>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = job_id(&id)?;
    // Unknown or another caller's: a 404 before any event.
    let first = jobs.ingest_job(&caller, id).await?;
    let permit = watchers.into_inner().admit(&caller.subject)?;
    let watch = Watch {
        jobs: jobs.into_inner(),
        caller,
        id,
        next: Some(first),
        last: None,
        queue: VecDeque::new(),
        finished: false,
        idle_reads: 0,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if let Some(text) = watch.queue.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(Bytes::from(text)), watch));
            }
            if watch.finished {
                return None;
            }
            let job = match watch.next.take() {
                Some(job) => job,
                None => {
                    let wait = POLL.saturating_mul(1 << watch.idle_reads.min(4));
                    tokio::time::sleep(wait.min(SLOWEST_POLL)).await;
                    match watch.jobs.ingest_job(&watch.caller, watch.id).await {
                        Ok(job) => job,
                        Err(error) => {
                            let error = ApiError::from(error);
                            watch.queue.push_back(event(
                                "error",
                                &json!({"error": {"code": error.code, "message": error.message, "details": error.details}}),
                            ));
                            watch.finished = true;
                            continue;
                        }
                    }
                }
            };
            watch.compare(job);
            watch.idle_reads = if watch.queue.is_empty() {
                watch.idle_reads.saturating_add(1)
            } else {
                0
            };
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(crate::sse::with_heartbeat(stream, HEARTBEAT_EVERY)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_core::{FileState, JobCounts, JobFile, JobState};

    fn job(states: &[FileState]) -> IngestJob {
        let mut counts = JobCounts::default();
        for state in states {
            counts.add(*state);
        }
        IngestJob {
            id: 1,
            collection: "kb".into(),
            state: if counts.pending() == 0 {
                JobState::Done
            } else {
                JobState::Running
            },
            created_at: 0,
            counts,
            files: states
                .iter()
                .enumerate()
                .map(|(n, state)| JobFile {
                    name: format!("f{n}.md"),
                    source: format!("upload:/*/f{n}.md"),
                    state: *state,
                    reason: (*state == FileState::Failed).then(|| "empty file".to_string()),
                    attempts: 1,
                })
                .collect(),
        }
    }

    struct NoJobs;

    #[async_trait::async_trait]
    impl IngestJobs for NoJobs {
        fn receive_uploads(
            &self,
            _: &Caller,
            _: UploadLimits,
        ) -> verity_core::VerityResult<Box<dyn UploadReceiver>> {
            unreachable!()
        }
        async fn create_job(
            &self,
            _: &Caller,
            _: NewIngestJob,
        ) -> verity_core::VerityResult<JobCreation> {
            unreachable!()
        }
        async fn ingest_job(&self, _: &Caller, _: i64) -> verity_core::VerityResult<IngestJob> {
            unreachable!()
        }
        async fn cancel_job(&self, _: &Caller, _: i64) -> verity_core::VerityResult<IngestJob> {
            unreachable!()
        }
    }

    #[test]
    fn each_caller_watches_a_few_jobs_at_once_and_a_closed_stream_frees_its_place() {
        let watchers = Arc::new(JobWatchers::default());
        let mine: Vec<_> = (0..MAX_WATCHES_PER_CALLER)
            .map(|_| watchers.admit("key:a").unwrap())
            .collect();
        let refused = watchers.admit("key:a").err().expect("one stream too many");
        assert_eq!(
            refused.status,
            actix_web::http::StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(refused.retry_after, Some(5));
        // Another caller is not held back by this one.
        let theirs = watchers.admit("key:b").unwrap();
        drop(mine);
        let again = watchers.admit("key:a").unwrap();
        drop((again, theirs));

        // And the server as a whole has a ceiling.
        let many: Vec<_> = (0..MAX_WATCHES)
            .map(|n| watchers.admit(&format!("key:{n}")).unwrap())
            .collect();
        assert!(watchers.admit("key:new").is_err());
        drop(many);
        assert!(watchers.admit("key:new").is_ok());
    }

    #[test]
    fn events_name_each_change_once_and_end_with_done() {
        let mut watch = Watch {
            jobs: Arc::new(NoJobs),
            caller: Caller::local(),
            id: 1,
            next: None,
            last: None,
            queue: VecDeque::new(),
            finished: false,
            idle_reads: 0,
            _permit: Arc::new(JobWatchers::default()).admit("local").unwrap(),
        };
        watch.compare(job(&[FileState::Queued, FileState::Queued]));
        assert_eq!(watch.queue.len(), 3, "two files and the progress");

        watch.queue.clear();
        watch.compare(job(&[FileState::Queued, FileState::Queued]));
        assert!(watch.queue.is_empty(), "nothing changed");
        watch.compare(job(&[FileState::Indexed, FileState::Failed]));
        let events: Vec<_> = watch.queue.drain(..).collect();
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(events[0].starts_with("event: file\ndata: {\"name\":\"f0.md\""));
        assert!(events[1].contains("\"reason\":\"empty file\""));
        assert!(events[2].starts_with("event: progress\n"));
        assert!(events[3].starts_with("event: done\n"));
        assert!(watch.finished);
    }
}
