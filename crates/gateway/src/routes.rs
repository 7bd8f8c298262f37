use actix_web::error::JsonPayloadError;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use verity_core::{AnswerService, QueryRequest, Readiness, Timings, collect_answer};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::limits::{QuerySlots, body_timeout_error, is_body_timeout, start_answer};
use crate::sse;
use crate::{collections, compat, documents, jobs, openapi};

/// The API's routes, written once: `configure` registers them and [`ROUTES`] lists them, so
/// that a test can check that each has an OpenAPI operation. Any other method on a known path
/// is a 405, any other path a 404, both in the error envelope.
macro_rules! api_routes {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? })+) => {
        pub fn configure(cfg: &mut web::ServiceConfig) {
            crate::page::configure(cfg);
            $(
                cfg.service(
                    web::resource($path)
                        $(.route(web::$method().to($handler)))+
                        .default_service(web::to(method_not_allowed)),
                );
            )+
            cfg.default_service(web::to(not_found));
        }

        /// Every (method, path) the API serves (the page's routes aside).
        #[cfg(test)]
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)+];
    };
}

api_routes! {
    "/v1/query" => { post: query }
    "/v1/collections" => { get: collections::list, post: collections::create }
    "/v1/collections/{name}" => { delete: collections::delete }
    "/v1/documents" => { get: documents::list, post: documents::upload }
    "/v1/documents/{id}" => { get: documents::get, delete: documents::delete }
    "/v1/ingest/jobs" => { post: jobs::create }
    "/v1/ingest/jobs/{id}" => { get: jobs::get, delete: jobs::cancel }
    "/v1/ingest/jobs/{id}/events" => { get: jobs::events }
    "/v1/feedback" => { post: documents::feedback }
    "/v1/answers/{id}" => { get: documents::answer_trace }
    "/v1/me" => { get: me }
    "/v1/chat/completions" => { post: compat::chat_completions }
    "/generate" => { post: compat::generate }
    "/openapi.json" => { get: openapi::openapi_json }
    "/docs" => { get: openapi::docs_page }
    "/healthz" => { get: healthz }
    "/readyz" => { get: readyz }
    "/metrics" => { get: metrics }
}

/// JSON bodies: size-limited, and every way they can be wrong answered in the error envelope.
pub fn json_config(max_body: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body)
        .error_handler(|err, _req| {
            let api_error = match &err {
                JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body of {length} bytes is over the limit of {limit} bytes"),
                ),
                JsonPayloadError::Overflow { limit } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is over the limit of {limit} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the request body as JSON with Content-Type: application/json",
                ),
                JsonPayloadError::Payload(e) if is_body_timeout(e) => body_timeout_error(),
                JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("request body does not match the expected fields: {e}"),
                ),
                JsonPayloadError::Deserialize(e) => ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("request body is not valid JSON: {e}"),
                ),
                other => ApiError::new(
                    ErrorCode::InvalidBody,
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
            ErrorCode::InvalidRequest,
            format!("the query string is invalid: {err}"),
        )
        .into()
    })
}

#[utoipa::path(
    post,
    path = "/v1/query",
    tag = "answers",
    summary = "Ask a question",
    description = "Answers from the collection's documents with citations and a grounding status. With `\"stream\": true` or `Accept: text/event-stream` the answer comes as Server-Sent Events: `sources`, `delta`…, `grounding` (this object), `done`.",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The answer (or, streamed, text/event-stream)", body = verity_core::Answer),
        (status = 400, description = "A field is missing or invalid", body = openapi::ErrorEnvelope),
        (status = 401, description = "No valid key or token", body = openapi::ErrorEnvelope),
        (status = 403, description = "The key lacks the query scope", body = openapi::ErrorEnvelope),
        (status = 404, description = "Unknown collection (or one the caller may not use)", body = openapi::ErrorEnvelope),
        (status = 413, description = "Body too large", body = openapi::ErrorEnvelope),
        (status = 415, description = "Body not sent as application/json", body = openapi::ErrorEnvelope),
        (status = 429, description = "Rate limit or generation queue full; see Retry-After", body = openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn query(
    http: HttpRequest,
    Authenticated(caller): Authenticated,
    service: web::Data<dyn AnswerService>,
    slots: web::Data<QuerySlots>,
    request: web::Json<QueryRequest>,
) -> Result<HttpResponse, ApiError> {
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

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics() -> HttpResponse {
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&prometheus::gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(e) => ApiError::new(ErrorCode::Internal, format!("cannot encode metrics: {e}"))
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
#[utoipa::path(get, path = "/v1/me", tag = "operations",
    summary = "Who the caller is: subject, scopes, collections, groups",
    responses((status = 200, description = "The caller", body = openapi::Me),
              (status = 401, description = "No valid key or token", body = openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn me(Authenticated(caller): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "subject": caller.subject,
        "scopes": caller.scopes,
        "collections": caller.collections,
        "groups": caller.groups,
    }))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "The process is up",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "The store and the index answer",
    responses((status = 200, description = "`{\"status\": \"ready\"}`"),
              (status = 503, description = "Names the dependency that does not answer", body = openapi::ErrorEnvelope)))]
pub async fn readyz(service: web::Data<dyn AnswerService>) -> Result<HttpResponse, ApiError> {
    match service.readiness().await {
        Readiness::Ready => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Readiness::NotReady(why) => Err(ApiError::new(ErrorCode::NotReady, why)),
    }
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!(
            "no route {} {}; see the README for the API",
            request.method(),
            request.path()
        ),
    ))
}

async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", request.method(), request.path()),
    ))
}
