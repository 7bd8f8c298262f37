//! The OpenAPI 3 document (`GET /openapi.json`), generated from the wire types with utoipa, and
//! a readable API page (`GET /docs`) rendered from it on the server: no script, no CDN, so it
//! works air-gapped.

use std::fmt::Write;
use std::sync::LazyLock;

use crate::ErrorCode;
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{PathItem, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};
use verity_core::{
    Answer, AnswerTrace, AttributedSentence, Citation, CitationAction, CollectionInfo,
    DocumentDetail, DocumentFormat, DocumentInfo, DocumentPage, DocumentStatus, Feedback,
    FileState, Grounding, GroundingStatus, IngestJob, JobCounts, JobFile, JobState, Language,
    MetadataFilter, QueryRequest, Rating, RetrievalMode, Timings, TraceCandidate,
    UnsupportedSentence, UploadStatus, UploadedDocument,
};

/// Every error: `{"error": {"code", "message", "details"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Stable and machine-readable; each code has one HTTP status.
    code: ErrorCode,
    /// What is wrong and what to do, in words.
    message: String,
    /// E.g. `{"field": "question"}`; `null` when there is nothing more to say.
    #[schema(value_type = Object, nullable = true)]
    details: Option<serde_json::Value>,
}

/// An OpenAI chat completion, with Verity's citations and grounding in `verity`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChatCompletion {
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

/// `{"collections": [...]}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct CollectionList {
    collections: Vec<CollectionInfo>,
}

/// Who the caller is and what it may do.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    subject: String,
    scopes: Vec<String>,
    /// `null`: every collection.
    collections: Option<Vec<String>>,
    /// `null`: no document-level condition.
    groups: Option<Vec<String>>,
}

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
        crate::routes::query,
        crate::compat::chat_completions,
        crate::compat::generate,
        crate::documents::feedback,
        crate::documents::answer_trace,
        crate::collections::list,
        crate::collections::create,
        crate::collections::delete,
        crate::documents::list,
        crate::documents::upload,
        crate::documents::get,
        crate::documents::delete,
        crate::jobs::create,
        crate::jobs::get,
        crate::jobs::events,
        crate::jobs::cancel,
        crate::routes::me,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics
    ),
    components(schemas(
        QueryRequest, Answer, Citation, Grounding, GroundingStatus, UnsupportedSentence,
        AttributedSentence, CitationAction,
        MetadataFilter, RetrievalMode, Language, Timings, ErrorEnvelope, ErrorCode,
        crate::compat::ChatCompletionRequest, ChatCompletion, crate::compat::GenerateRequest,
        CollectionInfo, CollectionList, crate::collections::NewCollection, DocumentInfo,
        DocumentFormat, DocumentStatus, DocumentDetail, DocumentPage, UploadedDocument,
        UploadStatus, crate::documents::TextUpload, crate::documents::FeedbackRequest, Feedback,
        Rating, AnswerTrace, TraceCandidate, Me, IngestJob, JobFile, JobCounts, JobState,
        FileState, crate::jobs::JobPathsRequest
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
    fn every_route_the_server_registers_has_an_operation() {
        let doc = document();
        for &(method, path) in crate::routes::ROUTES {
            if ["/openapi.json", "/docs"].contains(&path) {
                continue; // the description itself
            }
            let item = doc
                .paths
                .paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} has no OpenAPI path"));
            let operation = match method {
                "get" => &item.get,
                "post" => &item.post,
                "delete" => &item.delete,
                "put" => &item.put,
                other => panic!("{other} {path}: a method this test does not know"),
            };
            assert!(
                operation.is_some(),
                "{method} {path} has no OpenAPI operation"
            );
        }
        // …and nothing is described that the server does not serve.
        for (path, item) in &doc.paths.paths {
            for (method, _) in operations(item) {
                let method = method.to_ascii_lowercase();
                assert!(
                    crate::routes::ROUTES.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is described but not served"
                );
            }
        }
    }

    #[test]
    fn every_error_code_is_in_the_document() {
        let json = document().to_json().unwrap();
        for code in [
            "invalid_request",
            "job_not_found",
            "rate_limited",
            "not_ready",
        ] {
            assert!(json.contains(&format!("\"{code}\"")), "{code} missing");
        }
    }

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
