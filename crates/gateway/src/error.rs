use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
pub use verity_core::ErrorCode;
use verity_core::VerityError;

/// The one mapping of error codes to HTTP statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
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
            status: status_of(code),
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

/// The one place where Verity's errors become responses: the code is the error's own
/// ([`VerityError::code`]), the status that code's ([`status_of`]); here only what a client is
/// shown besides.
impl From<VerityError> for ApiError {
    fn from(err: VerityError) -> Self {
        let code = err.code();
        match &err {
            VerityError::InvalidRequest { field, message } => {
                ApiError::new(code, message.clone()).with_details(json!({"field": field}))
            }
            VerityError::NotFound { what, name } => {
                ApiError::new(code, err.to_string()).with_details(json!({(*what): name}))
            }
            VerityError::Unprocessable(message)
            | VerityError::Unauthenticated(message)
            | VerityError::Forbidden(message)
            | VerityError::TooLarge(message) => ApiError::new(code, message.clone()),
            VerityError::Busy {
                message,
                retry_after_secs,
            } => {
                let mut error = ApiError::new(code, message.clone())
                    .with_details(json!({"retry_after_seconds": retry_after_secs}));
                error.retry_after = Some(*retry_after_secs);
                error
            }
            VerityError::Unavailable { .. } => ApiError::new(code, err.to_string()),
            VerityError::Config(_) => {
                tracing::error!(error = %crate::redact(&err.to_string()), "configuration problem while serving a request");
                ApiError::new(code, err.to_string())
            }
            VerityError::Internal { .. } => {
                tracing::error!(error = %crate::redact(&err.to_string()), "internal error while serving a request");
                ApiError::new(
                    code,
                    "an internal error occurred; the server log has the details",
                )
            }
        }
    }
}
