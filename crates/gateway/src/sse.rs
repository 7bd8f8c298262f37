//! A streamed answer as Server-Sent Events: `event: sources|delta|grounding|done|error` with a
//! JSON `data:` line each.

use std::convert::Infallible;

use actix_web::web::Bytes;
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;
use verity_core::{AnswerEvent, AnswerStream, Citation, Timings};

/// The response body for `events`. When the client disconnects, actix drops the body, which
/// drops `events` and so cancels the generation behind it.
pub fn body(events: AnswerStream) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        Some((Ok(Bytes::from(encode(&event))), events))
    })
}

pub fn encode(event: &AnswerEvent) -> String {
    // Serialised straight from the typed values (not through `serde_json::Value`, which would
    // widen f32 scores to f64 digits) so that the `grounding` event is byte for byte the JSON
    // answer a non-streamed request gets.
    let data = match event {
        AnswerEvent::Sources(citations) => serde_json::to_string(&Sources { citations }),
        AnswerEvent::Delta(text) => serde_json::to_string(&json!({ "text": text })),
        AnswerEvent::Grounding(answer) => serde_json::to_string(answer),
        AnswerEvent::Done(timings) => serde_json::to_string(&Done { timings }),
        AnswerEvent::Error(message) => serde_json::to_string(
            &json!({"error": {"code": "internal", "message": message, "details": null}}),
        ),
    }
    .unwrap_or_else(|e| format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}"));
    // serde_json never writes a raw newline, so one `data:` line carries the whole value.
    format!("event: {}\ndata: {data}\n\n", event.name())
}

#[derive(Serialize)]
struct Done<'a> {
    timings: &'a Timings,
}

#[derive(Serialize)]
struct Sources<'a> {
    citations: &'a [Citation],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_and_carry_one_json_line() {
        let text = encode(&AnswerEvent::Delta("line one\nline two".into()));
        assert_eq!(
            text,
            "event: delta\ndata: {\"text\":\"line one\\nline two\"}\n\n"
        );
    }
}
