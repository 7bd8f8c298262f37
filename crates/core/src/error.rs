use serde::Serialize;
use thiserror::Error;

pub type VerityResult<T> = Result<T, VerityError>;

/// Errors shared across crates. Each variant says who has to act: the caller (`InvalidRequest`,
/// `NotFound`), the operator (`Unavailable`, `Config`), or a developer (`Internal`). The HTTP
/// status for each is decided once, in the gateway.
#[derive(Debug, Error)]
pub enum VerityError {
    /// Something the caller sent is wrong; `field` names it.
    #[error("{message}")]
    InvalidRequest { field: String, message: String },
    /// A named thing (collection, document) does not exist.
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    /// A backend (model, index, database) is not ready or failed in a way a retry may fix.
    #[error("{component} is unavailable: {message}")]
    Unavailable {
        component: &'static str,
        message: String,
    },
    /// A document sent to be ingested cannot be read (broken, empty, unsupported); the
    /// message says why.
    #[error("{0}")]
    Unprocessable(String),
    /// The request carries no valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// What the caller sent is over a size limit; the message names the limit and its setting.
    #[error("{0}")]
    TooLarge(String),
    /// The caller is known but may not do this (a missing scope).
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests are being served; the caller should retry after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// Settings are wrong or something required is missing on this machine.
    #[error("configuration problem: {0}")]
    Config(String),
    /// A bug or an unexpected failure of a backend.
    #[error("internal error in {component}: {message}")]
    Internal {
        component: &'static str,
        message: String,
    },
}

impl VerityError {
    /// The code a client is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            VerityError::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            VerityError::NotFound { what, .. } => match *what {
                "collection" => ErrorCode::CollectionNotFound,
                "document" => ErrorCode::DocumentNotFound,
                "answer" => ErrorCode::AnswerNotFound,
                "ingest job" => ErrorCode::JobNotFound,
                _ => ErrorCode::NotFound,
            },
            VerityError::Unavailable { .. } => ErrorCode::Unavailable,
            VerityError::Unprocessable(_) => ErrorCode::UnprocessableDocument,
            VerityError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            VerityError::Forbidden(_) => ErrorCode::Forbidden,
            VerityError::TooLarge(_) => ErrorCode::PayloadTooLarge,
            VerityError::Busy { .. } => ErrorCode::Busy,
            VerityError::Config(_) => ErrorCode::NotConfigured,
            VerityError::Internal { .. } => ErrorCode::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        VerityError::InvalidRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(component: &'static str, message: impl ToString) -> Self {
        VerityError::Internal {
            component,
            message: message.to_string(),
        }
    }

    pub fn unavailable(component: &'static str, message: impl ToString) -> Self {
        VerityError::Unavailable {
            component,
            message: message.to_string(),
        }
    }
}

/// Every error code the API answers with: stable and machine-readable, the same in JSON error
/// bodies and in SSE `error` events. The gateway maps each to its HTTP status, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
