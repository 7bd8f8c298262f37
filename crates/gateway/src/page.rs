//! The employees' page at `/` (`mod page`: a module named `web` would clash with
//! `actix_web::web`): a few static files built into the binary (no CDN, nothing fetched
//! at run time, so it works air-gapped), served with a strict Content-Security-Policy.
//!
//! Key decision: the page is plain HTML, CSS and JavaScript with no build step. `index.html`
//! names its assets as `/assets/<name>`; at start the references get `?v=<content hash>`, so a
//! browser may keep an asset for a year (a new binary means new URLs) while the page itself is
//! revalidated on every visit.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use crate::error::ApiError;
use crate::error::ErrorCode;

/// Scripts, styles, images and connections from this origin only; no inline script or style,
/// no plug-ins, no framing, no `<base>` tricks.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../web/index.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/i18n.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/icon.svg"),
    },
];

/// 64-bit FNV-1a: a stable content hash for cache-busting URLs and ETags (not a security
/// boundary; the files are our own).
fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

struct Page {
    /// `index.html` with every `/assets/<name>` reference versioned by its content hash.
    index: String,
    index_etag: String,
    /// Per asset (same order as [`ASSETS`]): its content hash.
    hashes: Vec<String>,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let hashes: Vec<String> = ASSETS.iter().map(|a| content_hash(a.body)).collect();
    let mut index = INDEX_HTML.to_string();
    for (asset, hash) in ASSETS.iter().zip(&hashes) {
        let plain = format!("\"/assets/{}\"", asset.name);
        let versioned = format!("\"/assets/{}?v={hash}\"", asset.name);
        index = index.replace(&plain, &versioned);
    }
    let index_etag = format!("\"{}\"", content_hash(index.as_bytes()));
    Page {
        index,
        index_etag,
        hashes,
    }
});

/// `GET /` and `GET /assets/{name}`; registered before the API's default 404 service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .wrap(Compress::default())
            .route(web::get().to(index))
            .route(web::head().to(index))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/assets/{name}")
            .wrap(Compress::default())
            .route(web::get().to(asset))
            .route(web::head().to(asset))
            .default_service(web::to(method_not_allowed)),
    );
}

/// The headers every page response carries.
fn secured(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    response
}

/// Whether the request's `If-None-Match` names `etag` (or `*`); weak tags compare equal.
fn not_modified(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

async fn index(request: HttpRequest) -> HttpResponse {
    let page = &*PAGE;
    let status = if not_modified(&request, &page.index_etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = secured(HttpResponse::build(status));
    response
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, page.index_etag.as_str()));
    if status == StatusCode::NOT_MODIFIED {
        return response.finish();
    }
    response
        .content_type("text/html; charset=utf-8")
        .body(page.index.as_str())
}

async fn asset(request: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name) else {
        return Err(ApiError::new(
            ErrorCode::RouteNotFound,
            format!(
                "no asset /assets/{name}; the page's assets are {}",
                ASSETS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let hash = &PAGE.hashes[i];
    let etag = format!("\"{hash}\"");
    // The versioned URL index.html uses never changes content: keep it. Any other URL of the
    // asset is revalidated.
    let versioned =
        web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
            .is_ok_and(|q| q.get("v") == Some(hash));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = not_modified(&request, &etag);
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = secured(HttpResponse::build(status));
    response
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag.as_str()));
    if fresh {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ))
        .body(asset.body))
}

async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", request.method(), request.path()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::App;
    use actix_web::test as http_test;

    /// The budget issue #7 sets for the page's own files, compressed; checked here on the
    /// uncompressed bytes, which are always larger.
    const BUDGET_BYTES: usize = 200 * 1024;

    /// The `/assets/…` names an HTML text refers to in `src` or `href` attributes.
    fn referenced_assets(html: &str) -> Vec<String> {
        let mut names = Vec::new();
        for attribute in ["src=\"/assets/", "href=\"/assets/"] {
            for (pos, _) in html.match_indices(attribute) {
                let rest = &html[pos + attribute.len()..];
                let end = rest.find(['"', '?']).expect("attribute is closed");
                names.push(rest[..end].to_string());
            }
        }
        names
    }

    #[test]
    fn every_asset_the_page_names_is_built_in_and_all_are_used() {
        let names = referenced_assets(INDEX_HTML);
        assert!(names.len() >= 4, "{names:?}");
        for name in &names {
            assert!(
                ASSETS.iter().any(|a| a.name == name.as_str()),
                "{name} missing"
            );
        }
        for asset in ASSETS {
            assert!(
                names.iter().any(|n| n == asset.name),
                "{} unused",
                asset.name
            );
        }
        // The served page names the versioned URLs.
        for (asset, hash) in ASSETS.iter().zip(&PAGE.hashes) {
            assert!(
                PAGE.index
                    .contains(&format!("/assets/{}?v={hash}\"", asset.name))
            );
        }
    }

    #[test]
    fn the_page_is_within_budget_and_keeps_to_its_content_security_policy() {
        let total = INDEX_HTML.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>();
        assert!(total < BUDGET_BYTES, "{total} bytes");
        // No inline script or style and no event-handler attributes: the CSP would block them.
        let lower = INDEX_HTML.to_lowercase();
        for (pos, _) in lower.match_indices("<script") {
            let tag_end = pos + lower[pos..].find('>').unwrap();
            assert!(lower[pos..tag_end].contains(" src="), "inline script");
        }
        assert!(!lower.contains("<style"), "inline style element");
        assert!(!lower.contains(" style="), "style attribute");
        assert!(
            !regex::Regex::new(r"\son[a-z]+=").unwrap().is_match(&lower),
            "event-handler attribute"
        );
        // Nothing from another origin.
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        // Server text is inserted as text only.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(asset.body).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!js.contains(sink), "{} uses {sink}", asset.name);
            }
        }
    }

    fn header(headers: &header::HeaderMap, name: &str) -> String {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[actix_web::test]
    async fn page_and_assets_carry_their_types_caching_and_security_headers() {
        let app = http_test::init_service(App::new().configure(configure)).await;

        let response =
            http_test::call_service(&app, http_test::TestRequest::get().uri("/").to_request())
                .await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(header(headers, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(headers, "cache-control"), "no-cache");
        assert_eq!(
            header(headers, "content-security-policy"),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(header(headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(headers, "referrer-policy"), "no-referrer");
        assert_eq!(header(headers, "x-frame-options"), "DENY");
        let etag = header(headers, "etag");
        let body = http_test::read_body(response).await;
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains("/assets/app.js?v=")
        );

        let again = http_test::TestRequest::get()
            .uri("/")
            .insert_header(("If-None-Match", etag))
            .to_request();
        assert_eq!(
            http_test::call_service(&app, again).await.status(),
            StatusCode::NOT_MODIFIED
        );

        let hash = &PAGE.hashes[0];
        let versioned = http_test::TestRequest::get()
            .uri(&format!("/assets/app.js?v={hash}"))
            .to_request();
        let response = http_test::call_service(&app, versioned).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(response.headers(), "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert!(header(response.headers(), "cache-control").contains("immutable"));
        assert_eq!(
            header(response.headers(), "x-content-type-options"),
            "nosniff"
        );
        let plain = http_test::TestRequest::get()
            .uri("/assets/app.css")
            .to_request();
        let response = http_test::call_service(&app, plain).await;
        assert_eq!(
            header(response.headers(), "content-type"),
            "text/css; charset=utf-8"
        );
        assert_eq!(header(response.headers(), "cache-control"), "no-cache");

        let gzip = http_test::TestRequest::get()
            .uri("/assets/app.js")
            .insert_header(("Accept-Encoding", "gzip"))
            .to_request();
        let response = http_test::call_service(&app, gzip).await;
        assert_eq!(header(response.headers(), "content-encoding"), "gzip");

        let missing = http_test::TestRequest::get()
            .uri("/assets/nope.js")
            .to_request();
        let response = http_test::call_service(&app, missing).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = http_test::read_body_json(response).await;
        assert_eq!(body["error"]["code"], "route_not_found");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("app.js")
        );

        let post = http_test::TestRequest::post().uri("/").to_request();
        assert_eq!(
            http_test::call_service(&app, post).await.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
