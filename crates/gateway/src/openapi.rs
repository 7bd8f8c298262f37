//! The OpenAPI 3 document (`GET /openapi.json`), generated from the wire types with utoipa, and
//! a readable API page (`GET /docs`) rendered from it on the server: no script, no CDN, so it
//! works air-gapped.

use std::fmt::Write;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{PathItem, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};
use verity_core::{
    Answer, AnswerTrace, AttributedSentence, Citation, CitationAction, CollectionInfo,
    DocumentDetail, DocumentInfo, DocumentPage, Feedback, FileState, Grounding, GroundingStatus,
    IngestJob, JobCounts, JobFile, JobState, Language, MetadataFilter, QueryRequest, Rating,
    RetrievalMode, Timings, TraceCandidate, UnsupportedSentence, UploadStatus, UploadedDocument,
};

/// Every error: `{"error": {"code", "message", "details"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_request`, `unauthenticated`, `busy`.
    code: String,
    /// What is wrong and what to do, in words.
    message: String,
    /// E.g. `{"field": "question"}`; `null` when there is nothing more to say.
    #[schema(value_type = Object, nullable = true)]
    details: Option<serde_json::Value>,
}

/// An OpenAI chat-completions request (the fields Verity reads).
#[derive(Serialize, ToSchema)]
struct ChatCompletionRequest {
    /// Echoed in the answer.
    model: Option<String>,
    /// The last message must be the user's question.
    messages: Vec<ChatMessage>,
    stream: Option<bool>,
    collection: Option<String>,
    top_k: Option<u32>,
    mode: Option<RetrievalMode>,
    filter: Option<MetadataFilter>,
}

#[derive(Serialize, ToSchema)]
struct ChatMessage {
    /// `system`, `user`, `assistant`, `developer` or `tool`.
    role: String,
    /// Text, or a list of `{"type": "text", "text": …}` parts.
    #[schema(value_type = Object)]
    content: serde_json::Value,
}

/// An OpenAI chat completion, with Verity's citations and grounding in `verity`.
#[derive(Serialize, ToSchema)]
struct ChatCompletion {
    id: String,
    object: String,
    created: u64,
    model: String,
    #[schema(value_type = Vec<Object>)]
    choices: Vec<serde_json::Value>,
    verity: VerityExtension,
}

#[derive(Serialize, ToSchema)]
struct VerityExtension {
    /// For `POST /v1/feedback` and `GET /v1/answers/{id}`.
    answer_id: String,
    citations: Vec<Citation>,
    grounding: Grounding,
    generator: String,
}

/// The seed's simple request: `prompt` is the question.
#[derive(Serialize, ToSchema)]
struct GenerateRequest {
    prompt: String,
    collection: Option<String>,
    top_k: Option<u32>,
    mode: Option<RetrievalMode>,
}

#[utoipa::path(
    post,
    path = "/v1/query",
    tag = "answers",
    summary = "Ask a question",
    description = "Answers from the collection's documents with citations and a grounding status. With `\"stream\": true` or `Accept: text/event-stream` the answer comes as Server-Sent Events: `sources`, `delta`…, `grounding` (this object), `done`.",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer (or, streamed, text/event-stream)", body = Answer),
        (status = 400, description = "A field is missing or invalid", body = ErrorEnvelope),
        (status = 401, description = "No valid key or token", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the query scope", body = ErrorEnvelope),
        (status = 404, description = "Unknown collection (or one the caller may not use)", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Body not sent as application/json", body = ErrorEnvelope),
        (status = 429, description = "Rate limit or generation queue full; see Retry-After", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn query() {}

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "answers",
    summary = "OpenAI-compatible chat completion",
    description = "The last user message is the question. Streamed chunks carry only verified text.",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion (or, streamed, chat.completion.chunk events)", body = ChatCompletion),
        (status = 400, description = "Malformed conversation", body = ErrorEnvelope),
        (status = 401, description = "No valid key or token", body = ErrorEnvelope),
        (status = 429, description = "Too many requests; see Retry-After", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn chat_completions() {}

#[utoipa::path(
    post,
    path = "/generate",
    tag = "answers",
    summary = "Ask a question (simple form)",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The answer", body = Answer),
        (status = 400, description = "Invalid request", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn generate() {}

/// `{"collections": [...]}`.
#[derive(Serialize, ToSchema)]
struct CollectionList {
    collections: Vec<CollectionInfo>,
}

#[derive(Serialize, ToSchema)]
struct NewCollection {
    name: String,
    /// Access groups its documents get when their upload or ingest names none.
    groups: Option<Vec<String>>,
}

/// A document sent as JSON (multipart/form-data with a `file` part, and `collection`,
/// `groups`, `tags` text fields, is the other way).
#[derive(Serialize, ToSchema)]
struct TextUpload {
    /// A file name, e.g. `leave-policy.md`: its extension says how to read `text`.
    name: String,
    text: String,
    collection: Option<String>,
    /// Who may read it; default the collection's groups (for a key with groups, its own).
    groups: Option<Vec<String>>,
    tags: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
struct FeedbackRequest {
    /// The `id` of an answer the caller was given.
    answer_id: String,
    rating: Rating,
    /// At most 2,000 characters.
    comment: Option<String>,
}

/// Who the caller is and what it may do.
#[derive(Serialize, ToSchema)]
struct Me {
    subject: String,
    scopes: Vec<String>,
    /// `null`: every collection.
    collections: Option<Vec<String>>,
    /// `null`: no document-level condition.
    groups: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/v1/documents", tag = "documents",
    summary = "The documents of a collection the caller may read, by source, a page at a time",
    params(("collection" = Option<String>, Query, description = "Default: the default collection"),
           ("limit" = Option<u32>, Query, description = "1-200, default 50"),
           ("cursor" = Option<String>, Query, description = "A previous page's next_cursor")),
    responses((status = 200, description = "One page", body = DocumentPage),
              (status = 400, description = "Invalid limit or cursor", body = ErrorEnvelope),
              (status = 404, description = "Unknown collection (or one the caller may not use)", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn list_documents() {}

#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    summary = "Add a document (ingest scope); answerable when this returns",
    description = "multipart/form-data with one `file` part (its filename names the document) and optional `collection`, `groups`, `tags` fields (lists comma-separated), or JSON. The document's source is `upload:/<groups>/<file name>`: uploading the same name with the same groups replaces it.",
    request_body(content = TextUpload, description = "JSON, or multipart/form-data"),
    responses((status = 201, description = "Added", body = UploadedDocument),
              (status = 200, description = "Updated, or unchanged (same bytes)", body = UploadedDocument),
              (status = 400, description = "Invalid field", body = ErrorEnvelope),
              (status = 403, description = "No ingest scope, or groups the key does not have", body = ErrorEnvelope),
              (status = 404, description = "Unknown collection", body = ErrorEnvelope),
              (status = 413, description = "Over server.max_upload_bytes", body = ErrorEnvelope),
              (status = 415, description = "Neither multipart/form-data nor JSON", body = ErrorEnvelope),
              (status = 422, description = "The document cannot be read; the message says why", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn upload_document() {}

#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents",
    summary = "A document with its chunks",
    params(("id" = String, Path, description = "The document id")),
    responses((status = 200, description = "The document", body = DocumentDetail),
              (status = 404, description = "Unknown, or not readable by the caller", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn get_document() {}

#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents",
    summary = "Remove a document, its chunks and their vectors (ingest scope)",
    params(("id" = String, Path, description = "The document id")),
    responses((status = 200, description = "`{\"deleted\": document}`"),
              (status = 403, description = "No ingest scope", body = ErrorEnvelope),
              (status = 404, description = "Unknown, or not readable by the caller", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn delete_document() {}

/// A job of files on the server (JSON); uploads are sent as multipart/form-data instead.
#[derive(Serialize, ToSchema)]
struct JobPathsRequest {
    /// Default: the default collection.
    collection: Option<String>,
    /// Files or directories under `ingest.allowed_root` (relative ones are relative to it).
    paths: Vec<String>,
    /// Default: the collection's default groups, or the key's own.
    groups: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    language: Option<Language>,
}

#[utoipa::path(post, path = "/v1/ingest/jobs", tag = "ingest jobs",
    summary = "Queue files for ingestion (ingest scope)",
    description = "multipart/form-data with one or more `file` parts (each within server.max_upload_bytes, all within server.max_job_upload_bytes) and optional `collection`, `groups`, `tags` (comma-separated) and `language` fields; each file is ingested under `upload:/<groups>/<file name>`. Or JSON with `paths` on the server, allowed only under ingest.allowed_root. The workers (`verity serve` runs one) ingest the files one at a time: each document is answerable as soon as its file is indexed. With an `Idempotency-Key` header, the same request again returns the same job (200).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters; one job per caller and key")),
    request_body(content = JobPathsRequest, description = "JSON, or multipart/form-data"),
    responses((status = 201, description = "The job, queued", body = IngestJob),
              (status = 200, description = "The job created earlier under this Idempotency-Key", body = IngestJob),
              (status = 400, description = "Invalid field, no file, a file name twice, a path that does not exist", body = ErrorEnvelope),
              (status = 403, description = "No ingest scope, groups the key does not have, a path outside ingest.allowed_root, or no root configured", body = ErrorEnvelope),
              (status = 404, description = "Unknown collection", body = ErrorEnvelope),
              (status = 409, description = "`idempotency_conflict`: the key was used for a different request", body = ErrorEnvelope),
              (status = 413, description = "A file over server.max_upload_bytes, or all over server.max_job_upload_bytes", body = ErrorEnvelope),
              (status = 415, description = "Neither multipart/form-data nor JSON", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn create_job() {}

#[utoipa::path(get, path = "/v1/ingest/jobs/{id}", tag = "ingest jobs",
    summary = "A job: its state, counts by file state, and every file's state",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = IngestJob),
              (status = 404, description = "Unknown, or another caller's", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn get_job() {}

#[utoipa::path(get, path = "/v1/ingest/jobs/{id}/events", tag = "ingest jobs",
    summary = "A job's progress as Server-Sent Events",
    description = "`file` `{name, source, state, reason?}` for every file state change (first for every file), `progress` `{state, counts}` when the counts change, and `done` `{state, counts}` once nothing is queued or running; then the stream ends.",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "text/event-stream"),
              (status = 404, description = "Unknown, or another caller's", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn job_events() {}

#[utoipa::path(delete, path = "/v1/ingest/jobs/{id}", tag = "ingest jobs",
    summary = "Cancel a job: queued files become cancelled, a running file finishes",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = IngestJob),
              (status = 404, description = "Unknown, or another caller's", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn cancel_job() {}

#[utoipa::path(post, path = "/v1/feedback", tag = "answers",
    summary = "Rate one of the caller's answers",
    request_body = FeedbackRequest,
    responses((status = 201, description = "`{\"answer_id\", \"feedback\"}`"),
              (status = 400, description = "Invalid rating or comment", body = ErrorEnvelope),
              (status = 404, description = "Unknown answer, or another caller's", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn feedback() {}

#[utoipa::path(get, path = "/v1/answers/{id}", tag = "answers",
    summary = "The stored trace of one of the caller's answers",
    params(("id" = String, Path, description = "The answer's id")),
    responses((status = 200, description = "The trace", body = AnswerTrace),
              (status = 404, description = "Unknown answer, another caller's, or older than traces.retention_days", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn answer_trace() {}

#[utoipa::path(get, path = "/v1/me", tag = "operations",
    summary = "Who the caller is: subject, scopes, collections, groups",
    responses((status = 200, description = "The caller", body = Me),
              (status = 401, description = "No valid key or token", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn me() {}

#[utoipa::path(get, path = "/v1/collections", tag = "collections",
    summary = "The collections the caller may use, with the documents it may read in each",
    responses((status = 200, description = "The list", body = CollectionList),
              (status = 401, description = "No valid key or token", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn list_collections() {}

#[utoipa::path(post, path = "/v1/collections", tag = "collections",
    summary = "Create an empty collection (admin scope)",
    request_body = NewCollection,
    responses((status = 201, description = "`{\"name\", \"created\": true}`"),
              (status = 200, description = "It existed: `{\"name\", \"created\": false}`"),
              (status = 400, description = "Invalid name", body = ErrorEnvelope),
              (status = 403, description = "No admin scope, or a collection the key may not use", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn create_collection() {}

#[utoipa::path(delete, path = "/v1/collections/{name}", tag = "collections",
    summary = "Remove a collection with its documents, chunks and vectors (admin scope)",
    params(("name" = String, Path, description = "The collection")),
    responses((status = 200, description = "`{\"name\", \"documents_removed\"}`"),
              (status = 403, description = "No admin scope", body = ErrorEnvelope),
              (status = 404, description = "Unknown collection (or one the key may not use)", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn delete_collection() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "The process is up",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "The store and the index answer",
    responses((status = 200, description = "`{\"status\": \"ready\"}`"),
              (status = 503, description = "Names the dependency that does not answer", body = ErrorEnvelope)))]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics() {}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`verity keys create`) or an OIDC access token",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Verity",
        description = "Grounded answers from a company's documents, with citations verified after generation."
    ),
    paths(
        query, chat_completions, generate, feedback, answer_trace, list_collections,
        create_collection, delete_collection, list_documents, upload_document, get_document,
        delete_document, create_job, get_job, job_events, cancel_job, me, healthz, readyz,
        metrics
    ),
    components(schemas(
        QueryRequest, Answer, Citation, Grounding, GroundingStatus, UnsupportedSentence,
        AttributedSentence, CitationAction,
        MetadataFilter, RetrievalMode, Language, Timings, ErrorEnvelope, ChatCompletionRequest,
        ChatCompletion, GenerateRequest, CollectionInfo, CollectionList, NewCollection,
        DocumentInfo, DocumentDetail, DocumentPage, UploadedDocument, UploadStatus, TextUpload,
        FeedbackRequest, Feedback, Rating, AnswerTrace, TraceCandidate, Me, IngestJob, JobFile,
        JobCounts, JobState, FileState, JobPathsRequest
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document and the page never change while the server runs: built once, on first use.
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises")
});
static PAGE: LazyLock<String> = LazyLock::new(|| render_page(&document()));

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT_JSON.as_str())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn schema_name(reference: &RefOr<utoipa::openapi::schema::Schema>) -> String {
    match reference {
        RefOr::Ref(r) => r
            .ref_location
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        RefOr::T(_) => "inline".to_string(),
    }
}

fn operations(item: &PathItem) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("GET", item.get.as_ref()),
        ("POST", item.post.as_ref()),
        ("PUT", item.put.as_ref()),
        ("DELETE", item.delete.as_ref()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// The API page: every operation with its summary, request body and responses.
pub fn render_page(document: &utoipa::openapi::OpenApi) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Verity API</title><style>\
         body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}\
         code{background:#f2f2f2;padding:0 .25rem;border-radius:3px}\
         section{border-top:1px solid #ddd;padding:.5rem 0}\
         .m{font-weight:700;display:inline-block;min-width:4rem}\
         </style></head><body><h1>Verity API</h1>",
    );
    let _ = write!(
        html,
        "<p>{}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). \
         Send <code>Authorization: Bearer &lt;key or token&gt;</code> unless the server runs with \
         authentication off. Every error is <code>{{\"error\": {{\"code\", \"message\", \"details\"}}}}</code>.</p>",
        escape(document.info.description.as_deref().unwrap_or_default()),
    );
    for (path, item) in &document.paths.paths {
        for (method, operation) in operations(item) {
            let _ = write!(
                html,
                "<section><h2><span class=\"m\">{method}</span> <code>{}</code></h2><p><strong>{}</strong></p>",
                escape(path),
                escape(operation.summary.as_deref().unwrap_or_default())
            );
            if let Some(description) = &operation.description {
                let _ = write!(html, "<p>{}</p>", escape(description));
            }
            if let Some(body) = &operation.request_body {
                let names: Vec<String> = body
                    .content
                    .values()
                    .filter_map(|c| c.schema.as_ref().map(schema_name))
                    .collect();
                let _ = write!(
                    html,
                    "<p>Request body: <code>{}</code></p>",
                    escape(&names.join(", "))
                );
            }
            html.push_str("<ul>");
            for (status, response) in &operation.responses.responses {
                let description = match response {
                    RefOr::T(r) => r.description.clone(),
                    RefOr::Ref(r) => r.ref_location.clone(),
                };
                let _ = write!(
                    html,
                    "<li><code>{}</code> {}</li>",
                    escape(status),
                    escape(&description)
                );
            }
            html.push_str("</ul></section>");
        }
    }
    html.push_str("</body></html>");
    html
}

pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_every_route_and_the_page_needs_nothing_outside() {
        let doc = document();
        for path in [
            "/v1/query",
            "/v1/chat/completions",
            "/generate",
            "/v1/collections",
            "/v1/collections/{name}",
            "/v1/documents",
            "/v1/documents/{id}",
            "/v1/ingest/jobs",
            "/v1/ingest/jobs/{id}",
            "/v1/ingest/jobs/{id}/events",
            "/v1/feedback",
            "/v1/answers/{id}",
            "/v1/me",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} missing");
        }
        let schemas = &doc.components.as_ref().unwrap().schemas;
        for name in [
            "QueryRequest",
            "Answer",
            "Citation",
            "Grounding",
            "ErrorEnvelope",
            "DocumentDetail",
            "AnswerTrace",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let page = render_page(&doc);
        assert!(page.contains("<code>/v1/query</code>"));
        assert!(!page.contains("<script"), "no scripts");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no outside links"
        );
    }
}
