//! The OpenAI-compatible `POST /v1/chat/completions` and the seed's `POST /generate`.

use serde_json::{Value, json};

use crate::helpers::knowledge_app;

fn post(path: &str, body: Value) -> (reqwest::StatusCode, String) {
    let app = knowledge_app();
    app.runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", app.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    })
}

#[test]
fn a_chat_completion_answers_with_citations_in_an_extra_field() {
    let (status, text) = post(
        "/v1/chat/completions",
        json!({
            "model": "gpt-4o-mini",
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "How many vacation days can I carry over?"}
            ]
        }),
    );
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("5"), "{content}");
    assert_eq!(body["verity"]["grounding"]["status"], "grounded");
    let citations = body["verity"]["citations"].as_array().unwrap();
    assert!(citations.iter().any(|c| {
        c["source"]
            .as_str()
            .unwrap()
            .ends_with("annual-vacation.md")
    }));
}

#[test]
fn a_streamed_chat_completion_sends_only_verified_text_then_done() {
    let (status, text) = post(
        "/v1/chat/completions",
        json!({
            "stream": true,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "How many vacation days can I carry over?"}
            ]}]
        }),
    );
    assert_eq!(status, 200, "{text}");
    let data: Vec<&str> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(!content.is_empty());
    // What a plain OpenAI client shows is exactly the verified answer.
    let (_, whole) = post(
        "/v1/query",
        json!({"question": "How many vacation days can I carry over?"}),
    );
    let whole: Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(content, whole["answer"].as_str().unwrap());
    assert_eq!(last["verity"]["grounding"], whole["grounding"]);
}

#[test]
fn a_follow_up_is_asked_with_the_previous_question() {
    let (status, text) = post(
        "/v1/chat/completions",
        json!({"messages": [
            {"role": "user", "content": "How many vacation days can I carry over into the next year?"},
            {"role": "assistant", "content": "You may carry over a maximum of 5 unused days [1]."},
            {"role": "user", "content": "By when must they be taken?"}
        ]}),
    );
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("31 March"), "{content}");
}

#[test]
fn malformed_conversations_are_400s_naming_the_problem() {
    for (body, expected) in [
        (json!({"messages": []}), "messages is empty"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
            "last message must be the user's",
        ),
        (
            json!({"messages": [{"role": "wizard", "content": "hi"}]}),
            "unknown message role",
        ),
        (json!({"model": "x"}), "missing field `messages`"),
    ] {
        let (status, text) = post("/v1/chat/completions", body.clone());
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(expected), "{body}: {text}");
    }
}

#[test]
fn generate_is_a_thin_alias_of_query() {
    let (status, text) = post(
        "/generate",
        json!({"prompt": "How many vacation days can I carry over?"}),
    );
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["answer"].as_str().unwrap().contains("5"));
    assert!(!body["citations"].as_array().unwrap().is_empty());

    let (status, _) = post("/generate", json!({"prompt": "   "}));
    assert_eq!(status, 400);
    let (status, text) = post("/generate", json!({"question": "x"}));
    assert_eq!(status, 400, "{text}");
}
