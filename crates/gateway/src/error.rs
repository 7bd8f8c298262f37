use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
use verity_core::VerityError;

/// An error as a client sees it: status, a stable machine-readable code, a message in words.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Sent as `Retry-After` (seconds) with 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
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
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message.clone())
                    .with_details(json!({"field": field}))
            }
            VerityError::NotFound { what, name } => {
                let code = match *what {
                    "collection" => "collection_not_found",
                    "document" => "document_not_found",
                    "answer" => "answer_not_found",
                    "ingest job" => "job_not_found",
                    _ => "not_found",
                };
                ApiError::new(StatusCode::NOT_FOUND, code, err.to_string())
                    .with_details(json!({(*what): name}))
            }
            VerityError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
            VerityError::Unprocessable(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_document",
                message.clone(),
            ),
            VerityError::Unauthenticated(message) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message.clone())
            }
            VerityError::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message.clone())
            }
            VerityError::Busy {
                message,
                retry_after_secs,
            } => {
                let mut error =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message.clone())
                        .with_details(json!({"retry_after_seconds": retry_after_secs}));
                error.retry_after = Some(*retry_after_secs);
                error
            }
            VerityError::Config(_) => {
                tracing::error!(error = %crate::redact(&err.to_string()), "configuration problem while serving a request");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_configured",
                    err.to_string(),
                )
            }
            VerityError::Internal { .. } => {
                tracing::error!(error = %crate::redact(&err.to_string()), "internal error while serving a request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; the server log has the details",
                )
            }
        }
    }
}
