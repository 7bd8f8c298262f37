//! A streamed answer as Server-Sent Events: `event: sources|delta|grounding|done|error` with a
//! JSON `data:` line each.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
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
        AnswerEvent::Error { code, message } => serde_json::to_string(
            &json!({"error": {"code": code, "message": message, "details": null}}),
        ),
    }
    .unwrap_or_else(|e| format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}"));
    // serde_json never writes a raw newline, so one `data:` line carries the whole value.
    format!("event: {}\ndata: {data}\n\n", event.name())
}

/// `body`, with an SSE comment (`: waiting`, which SSE clients ignore) whenever it has sent
/// nothing for `every`. A server learns that a client left only when a write fails, so a
/// stream that may stay silent a long time (an answer being verified, a job that does not
/// move) needs these to notice, and to drop what it is producing for nobody.
pub fn with_heartbeat<S>(body: S, every: Duration) -> impl Stream<Item = Result<Bytes, Infallible>>
where
    S: Stream<Item = Result<Bytes, Infallible>>,
{
    futures_util::stream::unfold(Box::pin(body), move |mut body| async move {
        // Dropping `next()` when the timer wins loses nothing: the stream keeps its own state.
        tokio::select! {
            item = body.next() => item.map(|item| (item, body)),
            () = tokio::time::sleep(every) => {
                Some((Ok(Bytes::from_static(b": waiting\n\n")), body))
            }
        }
    })
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

    #[tokio::test]
    async fn a_silent_stream_sends_a_comment_and_a_busy_one_does_not() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
        let body = futures_util::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|item| (item, r))
        });
        let mut stream = Box::pin(with_heartbeat(body, Duration::from_millis(50)));
        sender
            .send(Ok(Bytes::from_static(b"data: 1\n\n")))
            .await
            .unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), "data: 1\n\n");
        // Nothing for 50 ms: a comment.
        assert_eq!(stream.next().await.unwrap().unwrap(), ": waiting\n\n");
        sender
            .send(Ok(Bytes::from_static(b"data: 2\n\n")))
            .await
            .unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), "data: 2\n\n");
        drop(sender);
        assert!(stream.next().await.is_none(), "ends with its body");
    }

    #[test]
    fn events_are_named_and_carry_one_json_line() {
        let text = encode(&AnswerEvent::Delta("line one\nline two".into()));
        assert_eq!(
            text,
            "event: delta\ndata: {\"text\":\"line one\\nline two\"}\n\n"
        );
    }

    #[test]
    fn an_error_event_carries_the_code_a_json_error_would() {
        let text = encode(&AnswerEvent::Error {
            code: verity_core::ErrorCode::Unavailable,
            message: "the model is unavailable".into(),
        });
        // Key order depends on serde_json's features in the build: compare values.
        let data = text
            .strip_prefix("event: error\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .expect("one error event");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(data).unwrap(),
            json!({"error": {"code": "unavailable", "message": "the model is unavailable", "details": null}})
        );
        let json = crate::ApiError::from(verity_core::VerityError::unavailable("model", "down"));
        assert_eq!(json.code, verity_core::ErrorCode::Unavailable);
    }
}
