use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use verity_core::{AnswerService, QueryRequest, Readiness, Scope, Timings, collect_answer};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{QuerySlots, body_timeout_error, is_body_timeout, start_answer};
use crate::sse;
use crate::{collections, compat, documents, jobs, openapi};

pub fn configure(cfg: &mut web::ServiceConfig) {
    crate::page::configure(cfg);
    cfg.service(
        web::resource("/v1/query")
            .route(web::post().to(query))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/collections")
            .route(web::get().to(collections::list))
            .route(web::post().to(collections::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/collections/{name}")
            .route(web::delete().to(collections::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/documents")
            .route(web::get().to(documents::list))
            .route(web::post().to(documents::upload))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/documents/{id}")
            .route(web::get().to(documents::get))
            .route(web::delete().to(documents::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/ingest/jobs")
            .route(web::post().to(jobs::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/ingest/jobs/{id}")
            .route(web::get().to(jobs::get))
            .route(web::delete().to(jobs::cancel))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/ingest/jobs/{id}/events")
            .route(web::get().to(jobs::events))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/feedback")
            .route(web::post().to(documents::feedback))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/answers/{id}")
            .route(web::get().to(documents::answer_trace))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/me")
            .route(web::get().to(me))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/chat/completions")
            .route(web::post().to(compat::chat_completions))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/generate")
            .route(web::post().to(compat::generate))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::openapi_json))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/docs")
            .route(web::get().to(openapi::docs_page))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(web::to(method_not_allowed)),
    )
    .default_service(web::to(not_found));
}

/// JSON bodies: size-limited, and every way they can be wrong answered in the error envelope.
pub fn json_config(max_body: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body)
        .error_handler(|err, _req| {
            let api_error = match &err {
                JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body of {length} bytes is over the limit of {limit} bytes"),
                ),
                JsonPayloadError::Overflow { limit } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is over the limit of {limit} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the request body as JSON with Content-Type: application/json",
                ),
                JsonPayloadError::Payload(e) if is_body_timeout(e) => body_timeout_error(),
                JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("request body does not match the expected fields: {e}"),
                ),
                JsonPayloadError::Deserialize(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("request body is not valid JSON: {e}"),
                ),
                other => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("cannot read request body: {other}"),
                ),
            };
            api_error.into()
        })
}

/// Query strings: every way they can be wrong answered in the error envelope.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the query string is invalid: {err}"),
        )
        .into()
    })
}

async fn query(
    http: HttpRequest,
    caller: Authenticated,
    service: web::Data<dyn AnswerService>,
    slots: web::Data<QuerySlots>,
    request: web::Json<QueryRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.require(Scope::Query)?;
    let request = request.into_inner();
    let stream = request.stream || accepts_event_stream(&http);
    let events = start_answer(&slots, service.get_ref(), &caller, request).await?;
    if stream {
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("Cache-Control", "no-cache"))
            // Proxies such as nginx must pass events on as they come.
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(sse::body(events)));
    }
    let (answer, timings) = collect_answer(events).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Server-Timing", server_timing(&timings)))
        .json(answer))
}

/// Whether the client asked for Server-Sent Events with its `Accept` header.
fn accepts_event_stream(http: &HttpRequest) -> bool {
    http.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

async fn metrics() -> HttpResponse {
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&prometheus::gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode metrics: {e}"),
        )
        .error_response(),
    }
}

/// `Server-Timing` lets a client (and the benchmark) see where a query's time went.
fn server_timing(t: &Timings) -> String {
    let other = (t.total_ms - t.embed_ms - t.search_ms - t.generate_ms).max(0.0);
    format!(
        "embed;dur={:.3}, search;dur={:.3}, generate;dur={:.3}, other;dur={:.3}, total;dur={:.3}",
        t.embed_ms, t.search_ms, t.generate_ms, other, t.total_ms
    )
}

/// Who the caller is, as the server sees it: what it may do and see (the web page shows the
/// upload panel to callers with the ingest scope).
async fn me(caller: Authenticated) -> HttpResponse {
    let caller = caller.0;
    HttpResponse::Ok().json(json!({
        "subject": caller.subject,
        "scopes": caller.scopes,
        "collections": caller.collections,
        "groups": caller.groups,
    }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(service: web::Data<dyn AnswerService>) -> Result<HttpResponse, ApiError> {
    match service.readiness().await {
        Readiness::Ready => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Readiness::NotReady(why) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            why,
        )),
    }
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!(
            "no route {} {}; see the README for the API",
            request.method(),
            request.path()
        ),
    ))
}

async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", request.method(), request.path()),
    ))
}
