//! `GET/POST /v1/documents`, `GET/DELETE /v1/documents/{id}`, `POST /v1/feedback` and
//! `GET /v1/answers/{id}`.
//!
//! Key decision: a document the caller may not read and an answer it did not ask for get the
//! same 404 as an id that does not exist, so ids reveal nothing.

// Errors here end the request; their size does not matter next to an HTTP round trip.
#![allow(clippy::result_large_err)]

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use verity_core::{
    AnswerTraces, DocumentQuery, Documents, Rating, Scope, Upload, UploadStatus, VerityError,
};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::limits::{body_timeout_error, is_body_timeout};

/// The largest document `POST /v1/documents` takes, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimit(pub usize);

/// Text fields of an upload (collection, groups, tags) are short.
pub(crate) const MAX_FIELD_BYTES: usize = 4 * 1024;
const MAX_COMMENT_CHARS: usize = 2_000;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    collection: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The caller's readable documents of a collection, by source, a page at a time.
#[utoipa::path(get, path = "/v1/documents", tag = "documents",
    summary = "The documents of a collection the caller may read, by source, a page at a time",
    params(("collection" = Option<String>, Query, description = "Default: the default collection"),
           ("limit" = Option<u32>, Query, description = "1-200, default 50"),
           ("cursor" = Option<String>, Query, description = "A previous page's next_cursor")),
    responses((status = 200, description = "One page", body = verity_core::DocumentPage),
              (status = 400, description = "Invalid limit or cursor", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown collection (or one the caller may not use)", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    Authenticated(caller): Authenticated,
    documents: web::Data<dyn Documents>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(VerityError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}, got {limit}"),
        )
        .into());
    }
    let page = documents
        .list_documents(
            &caller,
            DocumentQuery {
                collection: params.collection,
                limit,
                cursor: params.cursor,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents",
    summary = "A document with its chunks",
    params(("id" = String, Path, description = "The document id")),
    responses((status = 200, description = "The document", body = verity_core::DocumentDetail),
              (status = 404, description = "Unknown, or not readable by the caller", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get(
    Authenticated(caller): Authenticated,
    documents: web::Data<dyn Documents>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(documents.get_document(&caller, &id).await?))
}

#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents",
    summary = "Remove a document, its chunks and their vectors (ingest scope)",
    params(("id" = String, Path, description = "The document id")),
    responses((status = 200, description = "`{\"deleted\": document}`"),
              (status = 403, description = "No ingest scope", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown, or not readable by the caller", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    Authenticated(caller): Authenticated,
    documents: web::Data<dyn Documents>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let removed = documents.delete_document(&caller, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"deleted": removed})))
}

/// An upload sent as JSON: a document's text and the name it goes by.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextUpload {
    collection: Option<String>,
    /// A file name such as `leave-policy.md`: its extension says how to read `text`.
    name: String,
    text: String,
    groups: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Adds one document: `multipart/form-data` with a `file` part (and optional `collection`,
/// `groups`, `tags` text fields, lists comma-separated), or JSON
/// `{"name", "text", "collection"?, "groups"?, "tags"?}`. 201 once it is answerable.
#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    summary = "Add a document (ingest scope); answerable when this returns",
    description = "multipart/form-data with one `file` part (its filename names the document) and optional `collection`, `groups`, `tags` fields (lists comma-separated), or JSON. The document's source is `upload:/<groups>/<file name>`: uploading the same name with the same groups replaces it.",
    request_body(content = TextUpload, description = "JSON, or multipart/form-data"),
    responses((status = 201, description = "Added", body = verity_core::UploadedDocument),
              (status = 200, description = "Updated, or unchanged (same bytes)", body = verity_core::UploadedDocument),
              (status = 400, description = "Invalid field", body = crate::openapi::ErrorEnvelope),
              (status = 403, description = "No ingest scope, or groups the key does not have", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown collection", body = crate::openapi::ErrorEnvelope),
              (status = 413, description = "Over server.max_upload_bytes", body = crate::openapi::ErrorEnvelope),
              (status = 415, description = "Neither multipart/form-data nor JSON", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "The document cannot be read; the message says why", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn upload(
    http: HttpRequest,
    caller: Authenticated,
    documents: web::Data<dyn Documents>,
    limit: web::Data<UploadLimit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Refused before the body is read; the service decides again (verity-service).
    let caller = caller.require(Scope::Ingest)?;
    let content_type = http
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let upload = if content_type.starts_with("multipart/form-data") {
        read_multipart(&http, payload, limit.0).await?
    } else if content_type.starts_with("application/json") {
        let body = read_body(payload, limit.0, || document_too_large(limit.0)).await?;
        let text: TextUpload = json_body(&body, "a document upload")?;
        Upload {
            collection: text.collection,
            file_name: text.name,
            bytes: text.text.into_bytes(),
            groups: text.groups,
            tags: text.tags,
        }
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the document as multipart/form-data with a \"file\" part, or as JSON {\"name\", \"text\"}",
        ));
    };
    let uploaded = documents.upload_document(&caller, upload).await?;
    let status = match uploaded.status {
        UploadStatus::Added => StatusCode::CREATED,
        UploadStatus::Updated | UploadStatus::Unchanged => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(uploaded))
}

pub(crate) fn too_large(message: String) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, message)
}

fn document_too_large(limit: usize) -> ApiError {
    too_large(format!(
        "the document is over the upload limit of {limit} bytes (server.max_upload_bytes)"
    ))
}

fn payload_error(e: actix_web::error::PayloadError) -> ApiError {
    if is_body_timeout(&e) {
        body_timeout_error()
    } else {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("cannot read request body: {e}"),
        )
    }
}

/// The whole body, or `over_limit()` once it passes `limit` bytes.
pub(crate) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    over_limit: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(payload_error)?;
        if body.len() + chunk.len() > limit {
            return Err(over_limit());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON body read by hand (past the JSON extractor's size limit): 400 `invalid_request`
/// when its fields are wrong, `invalid_json` when it is not JSON; `what` names what it must be.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidRequest
        } else {
            ErrorCode::InvalidJson
        };
        ApiError::new(code, format!("request body is not {what}: {e}"))
    })
}

pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

async fn read_multipart(
    http: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Upload, ApiError> {
    let invalid =
        |field: &str, message: String| ApiError::from(VerityError::invalid(field, message));
    let mut form = actix_multipart::Multipart::new(http.headers(), payload.into_inner());
    let mut upload = Upload {
        collection: None,
        file_name: String::new(),
        bytes: Vec::new(),
        groups: None,
        tags: Vec::new(),
    };
    let mut has_file = false;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| multipart_error(&e))?;
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let cap = if name == "file" {
            limit
        } else {
            MAX_FIELD_BYTES
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| multipart_error(&e))?;
            if bytes.len() + chunk.len() > cap {
                return Err(if name == "file" {
                    document_too_large(limit)
                } else {
                    invalid(
                        &name,
                        format!("the field {name:?} is over {MAX_FIELD_BYTES} bytes"),
                    )
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(bytes.clone())
                .map_err(|_| invalid(&name, format!("the field {name:?} is not UTF-8 text")))
        };
        match name.as_str() {
            "file" => {
                if has_file {
                    return Err(invalid("file", "send one file per request".to_string()));
                }
                has_file = true;
                upload.file_name = file_name
                    .ok_or_else(|| invalid("file", "the file part has no filename".to_string()))?;
                upload.bytes = bytes;
            }
            "collection" => upload.collection = Some(text()?.trim().to_string()),
            "groups" => upload.groups = Some(split_list(&text()?)),
            "tags" => upload.tags = split_list(&text()?),
            other => {
                return Err(invalid(
                    other,
                    format!(
                        "unknown field {other:?}: send file, and optionally collection, groups, tags"
                    ),
                ));
            }
        }
    }
    if !has_file {
        return Err(invalid(
            "file",
            "the form has no \"file\" part: send the document as a file field named file"
                .to_string(),
        ));
    }
    Ok(upload)
}

pub(crate) fn multipart_error(e: &actix_multipart::MultipartError) -> ApiError {
    if let actix_multipart::MultipartError::Payload(p) = e
        && is_body_timeout(p)
    {
        return body_timeout_error();
    }
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("the multipart form cannot be read: {e}"),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    answer_id: String,
    rating: Rating,
    comment: Option<String>,
}

/// Rates one of the caller's answers (thumbs up or down, optional comment).
#[utoipa::path(post, path = "/v1/feedback", tag = "answers",
    summary = "Rate one of the caller's answers",
    request_body = FeedbackRequest,
    responses((status = 201, description = "`{\"answer_id\", \"feedback\"}`"),
              (status = 400, description = "Invalid rating or comment", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown answer, or another caller's", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn feedback(
    Authenticated(caller): Authenticated,
    traces: web::Data<dyn AnswerTraces>,
    request: web::Json<FeedbackRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = request.into_inner();
    let comment = request
        .comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if let Some(comment) = &comment {
        let length = comment.chars().count();
        if length > MAX_COMMENT_CHARS {
            return Err(VerityError::invalid(
                "comment",
                format!("comment is {length} characters long; the limit is {MAX_COMMENT_CHARS}"),
            )
            .into());
        }
    }
    let feedback = traces
        .give_feedback(&caller, &request.answer_id, request.rating, comment)
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "answer_id": request.answer_id,
        "feedback": feedback,
    })))
}

/// The stored trace of one of the caller's answers.
#[utoipa::path(get, path = "/v1/answers/{id}", tag = "answers",
    summary = "The stored trace of one of the caller's answers",
    params(("id" = String, Path, description = "The answer's id")),
    responses((status = 200, description = "The trace", body = verity_core::AnswerTrace),
              (status = 404, description = "Unknown answer, another caller's, or older than traces.retention_days", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn answer_trace(
    Authenticated(caller): Authenticated,
    traces: web::Data<dyn AnswerTraces>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(traces.answer_trace(&caller, &id).await?))
}
