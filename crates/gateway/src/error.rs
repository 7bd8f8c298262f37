use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use verity_core::VerityError;

/// Every error code the API answers with, each mapped once to its HTTP status. The code is
/// stable and machine-readable; it is the same in JSON error bodies and in SSE `error` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is out of range (`details.field` names it).
    InvalidRequest,
    /// The body is not valid JSON.
    InvalidJson,
    /// The body cannot be read as what the route takes (multipart parts, fields).
    InvalidBody,
    /// No valid API key or token.
    Unauthenticated,
    /// The caller may not do this (a missing scope, a group it lacks).
    Forbidden,
    /// A browser request from an origin not in `server.cors_origins`.
    CrossOriginRefused,
    /// No such route.
    RouteNotFound,
    /// No such collection, or not one the caller may use.
    CollectionNotFound,
    /// No such document, or not one the caller may read.
    DocumentNotFound,
    /// No such answer trace, or not one the caller may read.
    AnswerNotFound,
    /// No such ingest job, or not one the caller may read.
    JobNotFound,
    /// Something else the request names does not exist.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The body did not arrive in time.
    RequestTimeout,
    /// The `Idempotency-Key` was used for a different request.
    IdempotencyConflict,
    /// The body or a file is over its limit.
    PayloadTooLarge,
    /// The body's `Content-Type` is not one the route reads.
    UnsupportedMediaType,
    /// The `Host` header names no host this server answers for (authentication off).
    HostNotAllowed,
    /// A document that cannot be read (broken, empty, unsupported).
    UnprocessableDocument,
    /// Over capacity: retry after `Retry-After` seconds.
    Busy,
    /// This caller sent too many requests: retry after `Retry-After` seconds.
    RateLimited,
    /// A fault of the server; its log has the details.
    Internal,
    /// A backend (database, index, model) is not available.
    Unavailable,
    /// The server's settings are incomplete for this request.
    NotConfigured,
    /// The server is not ready to answer (`/readyz`).
    NotReady,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CrossOriginRefused => "cross_origin_refused",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::CollectionNotFound => "collection_not_found",
            ErrorCode::DocumentNotFound => "document_not_found",
            ErrorCode::AnswerNotFound => "answer_not_found",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::HostNotAllowed => "host_not_allowed",
            ErrorCode::UnprocessableDocument => "unprocessable_document",
            ErrorCode::Busy => "busy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotConfigured => "not_configured",
            ErrorCode::NotReady => "not_ready",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidJson => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidBody => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::CrossOriginRefused => StatusCode::FORBIDDEN,
            ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
            ErrorCode::CollectionNotFound => StatusCode::NOT_FOUND,
            ErrorCode::DocumentNotFound => StatusCode::NOT_FOUND,
            ErrorCode::AnswerNotFound => StatusCode::NOT_FOUND,
            ErrorCode::JobNotFound => StatusCode::NOT_FOUND,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::HostNotAllowed => StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::UnprocessableDocument => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Busy => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as a client sees it: status, a stable machine-readable code, a message in words.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
    /// Sent as `Retry-After` (seconds) with 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(json!({
            "error": {"code": self.code, "message": self.message, "details": self.details}
        }))
    }
}

/// The one place where Verity's errors become HTTP statuses.
impl From<VerityError> for ApiError {
    fn from(err: VerityError) -> Self {
        match &err {
            VerityError::InvalidRequest { field, message } => {
                ApiError::new(ErrorCode::InvalidRequest, message.clone())
                    .with_details(json!({"field": field}))
            }
            VerityError::NotFound { what, name } => {
                let code = match *what {
                    "collection" => ErrorCode::CollectionNotFound,
                    "document" => ErrorCode::DocumentNotFound,
                    "answer" => ErrorCode::AnswerNotFound,
                    "ingest job" => ErrorCode::JobNotFound,
                    _ => ErrorCode::NotFound,
                };
                ApiError::new(code, err.to_string()).with_details(json!({(*what): name}))
            }
            VerityError::Unavailable { .. } => {
                ApiError::new(ErrorCode::Unavailable, err.to_string())
            }
            VerityError::Unprocessable(message) => {
                ApiError::new(ErrorCode::UnprocessableDocument, message.clone())
            }
            VerityError::Unauthenticated(message) => {
                ApiError::new(ErrorCode::Unauthenticated, message.clone())
            }
            VerityError::Forbidden(message) => ApiError::new(ErrorCode::Forbidden, message.clone()),
            VerityError::Busy {
                message,
                retry_after_secs,
            } => {
                let mut error = ApiError::new(ErrorCode::Busy, message.clone())
                    .with_details(json!({"retry_after_seconds": retry_after_secs}));
                error.retry_after = Some(*retry_after_secs);
                error
            }
            VerityError::Config(_) => {
                tracing::error!(error = %crate::redact(&err.to_string()), "configuration problem while serving a request");
                ApiError::new(ErrorCode::NotConfigured, err.to_string())
            }
            VerityError::Internal { .. } => {
                tracing::error!(error = %crate::redact(&err.to_string()), "internal error while serving a request");
                ApiError::new(
                    ErrorCode::Internal,
                    "an internal error occurred; the server log has the details",
                )
            }
        }
    }
}
