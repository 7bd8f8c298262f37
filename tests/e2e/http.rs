//! The HTTP API on a random port: answers, and a 4xx naming the problem for every bad request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::knowledge_app;

struct Reply {
    status: StatusCode,
    server_timing: Option<String>,
    body: Value,
}

fn send(method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let app = knowledge_app();
    app.runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request =
            client.request(method.parse().unwrap(), format!("{}{path}", app.base_url));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status();
        let server_timing = response
            .headers()
            .get("server-timing")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
        });
        Reply {
            status,
            server_timing,
            body,
        }
    })
}

fn query(body: Value) -> Reply {
    send(
        "POST",
        "/v1/query",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
}

/// Checks the error envelope and returns its code.
fn error_code(reply: &Reply) -> &str {
    let error = &reply.body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {}",
        reply.body
    );
    assert!(error.get("details").is_some(), "no details: {}", reply.body);
    error["code"].as_str().expect("an error code")
}

#[test]
fn a_question_is_answered_with_citations_and_timings() {
    let reply = query(json!({"question": "How long must a password be?", "top_k": 3}));
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["grounding"]["status"], "grounded");
    let citations = reply.body["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 3);
    let first = &citations[0];
    for key in [
        "id",
        "document_id",
        "title",
        "source",
        "chunk_id",
        "start",
        "end",
        "text",
        "score",
    ] {
        assert!(first.get(key).is_some(), "citation lacks {key}: {first}");
    }
    assert!(
        first["source"]
            .as_str()
            .unwrap()
            .ends_with("password-policy.md")
    );
    assert!(
        reply.body["answer"]
            .as_str()
            .unwrap()
            .contains("14 characters")
    );
    let timing = reply.server_timing.expect("Server-Timing header");
    assert!(
        timing.contains("embed;dur=") && timing.contains("search;dur="),
        "{timing}"
    );
}

#[test]
fn an_unanswerable_question_is_abstained_over_http() {
    let reply = query(json!({"question": "How many moons does Jupiter have?"}));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["grounding"]["status"], "abstained");
}

#[test]
fn health_and_readiness_answer() {
    let health = send("GET", "/healthz", None, vec![]);
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = send("GET", "/readyz", None, vec![]);
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
}

#[test]
fn a_missing_question_is_a_400_naming_the_field() {
    let reply = query(json!({"collection": "default"}));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "invalid_request");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("question")
    );
}

#[test]
fn an_empty_question_is_a_400() {
    for question in ["", "   \n\t"] {
        let reply = query(json!({"question": question}));
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&reply), "invalid_request");
        assert_eq!(reply.body["error"]["details"]["field"], "question");
    }
}

#[test]
fn a_question_over_the_length_limit_is_a_400() {
    let reply = query(json!({"question": "why ".repeat(600)}));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "invalid_request");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit is 2000")
    );
}

#[test]
fn malformed_json_is_a_400() {
    let reply = send(
        "POST",
        "/v1/query",
        Some("application/json"),
        b"{\"question\": ".to_vec(),
    );
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "invalid_json");
}

#[test]
fn wrongly_typed_and_unknown_fields_are_400s() {
    for body in [
        json!({"question": 42}),
        json!({"question": "hi", "top_k": "five"}),
        json!({"question": "hi", "colection": "x"}),
    ] {
        let reply = query(body.clone());
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&reply), "invalid_request", "{body}");
    }
}

#[test]
fn an_unknown_collection_is_a_404() {
    let reply =
        query(json!({"question": "How long must a password be?", "collection": "does-not-exist"}));
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&reply), "collection_not_found");
    assert_eq!(
        reply.body["error"]["details"]["collection"],
        "does-not-exist"
    );
}

#[test]
fn an_invalid_collection_name_is_a_400() {
    let reply = query(json!({"question": "hi", "collection": "../../etc"}));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["details"]["field"], "collection");
}

#[test]
fn top_k_out_of_range_is_a_400() {
    for top_k in [0, 21, 100000] {
        let reply = query(json!({"question": "hi", "top_k": top_k}));
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "top_k {top_k}");
        assert_eq!(reply.body["error"]["details"]["field"], "top_k");
    }
    let negative = query(json!({"question": "hi", "top_k": -1}));
    assert_eq!(negative.status, StatusCode::BAD_REQUEST);
}

#[test]
fn a_body_that_is_not_json_is_a_415() {
    let reply = send(
        "POST",
        "/v1/query",
        Some("text/plain"),
        b"How long must a password be?".to_vec(),
    );
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&reply), "unsupported_media_type");
}

#[test]
fn an_oversized_body_is_a_413() {
    let body = serde_json::to_vec(&json!({"question": "x".repeat(70_000)})).unwrap();
    let reply = send("POST", "/v1/query", Some("application/json"), body);
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&reply), "payload_too_large");
}

#[test]
fn wrong_methods_and_unknown_routes_get_json_errors() {
    let reply = send("GET", "/v1/query", None, vec![]);
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&reply), "method_not_allowed");
    let reply = send("GET", "/v2/everything", None, vec![]);
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&reply), "route_not_found");
}

#[test]
fn each_mode_can_be_asked_for_and_an_unknown_mode_is_a_400() {
    for mode in ["dense", "sparse", "hybrid"] {
        let reply = query(json!({"question": "How long must a password be?", "mode": mode}));
        assert_eq!(reply.status, StatusCode::OK, "{mode}: {}", reply.body);
    }
    let reply = query(json!({"question": "hi", "mode": "fuzzy"}));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant `fuzzy`")
    );
}

#[test]
fn a_filter_is_applied_and_a_bad_filter_is_a_400_naming_the_problem() {
    let reply = query(
        json!({"question": "vacaciones", "filter": {"language": "es", "tags": ["none-has-this"]}}),
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["citations"].as_array().unwrap().len(), 0);
    assert_eq!(reply.body["grounding"]["status"], "abstained");

    let unknown_field = query(json!({"question": "hi", "filter": {"author": "me"}}));
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown_field.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `author`")
    );

    let unknown_language = query(json!({"question": "hi", "filter": {"language": "fr"}}));
    assert_eq!(unknown_language.status, StatusCode::BAD_REQUEST);

    let bad_date = query(json!({"question": "hi", "filter": {"modified_after": "last tuesday"}}));
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_date.body["error"]["details"]["field"],
        "filter.modified_after"
    );

    let backwards = query(
        json!({"question": "hi", "filter": {"modified_after": "2025-01-02", "modified_before": "2025-01-01"}}),
    );
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);

    let relative = query(json!({"question": "hi", "filter": {"source_prefix": "handbook/it"}}));
    assert_eq!(relative.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        relative.body["error"]["details"]["field"],
        "filter.source_prefix"
    );

    let no_tags = query(json!({"question": "hi", "filter": {"tags": []}}));
    assert_eq!(no_tags.status, StatusCode::BAD_REQUEST);
}

#[test]
fn the_openapi_document_and_the_api_page_are_served() {
    let app = knowledge_app();
    app.runtime.block_on(async {
        let document: Value = reqwest::get(format!("{}/openapi.json", app.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        assert!(document["paths"]["/v1/query"]["post"].is_object());
        assert!(document["components"]["schemas"]["Answer"].is_object());
        let page = reqwest::get(format!("{}/docs", app.base_url))
            .await
            .unwrap();
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("/v1/chat/completions"));
        assert!(!html.contains("<script"));
    });
}

#[test]
fn no_cors_headers_are_sent_unless_origins_are_configured() {
    let app = knowledge_app();
    app.runtime.block_on(async {
        let response = reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/query", app.base_url),
            )
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    });
}
