//! One log line per request — method, path, status, latency, caller, request id — with
//! e-mail addresses and card-like numbers redacted, and a request id on every response
//! (`X-Request-Id`: the client's own if it sent a sane one).
//!
//! Key decision: the log never holds secrets or document text. Bodies (questions, answers,
//! uploaded text) are not logged at all; the path and query string are, after redaction; the
//! caller appears as `key:<id>` or `oidc:<subject>`, never as a key or token.

use std::sync::LazyLock;

use regex::Regex;

/// The caller of a request, put in the request's extensions by authentication so that the
/// request log can name it.
#[derive(Debug, Clone)]
pub struct CallerSubject(pub String);

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("valid regex")
});
/// 13 to 19 digits, optionally in groups separated by spaces, dashes or `+` / `%20` (spaces in
/// a URL): card numbers and the like.
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d(?:[ +-]|%20)?){12,18}\d\b").expect("valid regex"));

/// `text` with e-mail addresses and card-like numbers replaced.
pub fn redact(text: &str) -> String {
    let text = EMAIL.replace_all(text, "[email]");
    CARD.replace_all(&text, "[number]").into_owned()
}

/// A client's request id is kept if it is short and plain; otherwise a new one is made.
pub fn request_id(incoming: Option<&str>) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            id.to_string()
        }
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_card_numbers_are_redacted() {
        assert_eq!(
            redact("/v1/documents?owner=maria.lopez@acme.example&card=4111 1111 1111 1111"),
            "/v1/documents?owner=[email]&card=[number]"
        );
        assert_eq!(redact("q=ana%40acme.cl"), "q=[email]");
        assert_eq!(redact("4111-1111-1111-1111"), "[number]");
        assert_eq!(redact("card=4111+1111+1111+1111"), "card=[number]");
        // Ordinary numbers and ids stay.
        assert_eq!(
            redact("/v1/query?top_k=5&year=2024"),
            "/v1/query?top_k=5&year=2024"
        );
    }

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        assert_eq!(request_id(Some("abc-123")), "abc-123");
        assert_ne!(request_id(Some("bad id\nx")), "bad id\nx");
        assert_eq!(request_id(None).len(), 32);
        assert_eq!(request_id(Some(&"x".repeat(65))).len(), 32);
    }
}
