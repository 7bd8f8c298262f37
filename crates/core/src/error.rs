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
