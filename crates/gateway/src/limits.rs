//! Limits that keep one client, or too many at once, from exhausting the server: a budget of
//! questions answered at once, and a deadline for request bodies.

// Errors here end the request; their size does not matter next to an HTTP round trip.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use verity_core::{AnswerService, AnswerStream, Caller, QueryRequest};

use crate::error::ApiError;
use crate::error::ErrorCode;

/// Questions being answered at once, across all workers. Over the budget a request is refused
/// at once (429 `busy`) instead of queueing: what is admitted keeps its latency, and a refusal
/// costs microseconds.
pub struct QuerySlots {
    slots: Option<Arc<Semaphore>>,
    limit: usize,
}

impl QuerySlots {
    /// `limit` 0: no limit.
    pub fn new(limit: usize) -> Self {
        Self {
            slots: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            limit,
        }
    }

    fn take(&self) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                let mut error = ApiError::new(
                    ErrorCode::Busy,
                    format!(
                        "the server is answering {} questions at once, its limit; retry in 1 s",
                        self.limit
                    ),
                )
                .with_details(serde_json::json!({"retry_after_seconds": 1}));
                error.retry_after = Some(1);
                Err(error)
            }
        }
    }
}

/// Starts answering within the budget: a slot is held while the request is checked and its
/// passages retrieved, until the answer stream starts (generation has its own queue, see
/// `generation.max_concurrent`).
pub async fn start_answer(
    slots: &QuerySlots,
    service: &dyn AnswerService,
    caller: &Caller,
    request: QueryRequest,
) -> Result<AnswerStream, ApiError> {
    let _slot = slots.take()?;
    Ok(service.query_stream(caller, request).await?)
}

/// Whether a body read failed because the client was too slow sending it.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
}

pub fn body_timeout_error() -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        "the request body did not arrive in time; send it at once",
    )
}

/// Makes the request's body fail with a timeout (see [`is_body_timeout`]) if it has not all
/// arrived `timeout` after its head: a client sending a byte a second cannot hold a worker.
pub fn with_body_deadline(mut request: ServiceRequest, timeout: Duration) -> ServiceRequest {
    let mut inner = request.take_payload();
    let mut deadline = Box::pin(tokio::time::sleep(timeout));
    let mut finished = false;
    let body = futures_util::stream::poll_fn(move |cx| {
        if finished {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = inner.poll_next_unpin(cx) {
            finished = item.is_none();
            return Poll::Ready(item);
        }
        if deadline.as_mut().poll(cx).is_ready() {
            finished = true;
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body timed out",
            )))));
        }
        Poll::Pending
    });
    request.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    request
}
