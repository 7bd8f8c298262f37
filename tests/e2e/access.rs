//! Authentication and document-level access over HTTP, with API keys (`auth.mode = "keys"`):
//! two tenants with near-identical documents never see each other's, whatever the mode,
//! streamed or not, even when one quotes the other's text; keys are scoped to collections and
//! actions; a revoked key stops at once; bursts over the rate limit get 429.

use std::sync::{Arc, OnceLock};

use reqwest::StatusCode;
use serde_json::{Value, json};
use verity_auth::{AuthMode, create_key};
use verity_core::Scope;
use verity_service::Verity;
use verity_service::pipeline::IngestOptions;

use crate::helpers::{TestApp, server_runtime, verity_command, write};

const ACME: &str = "# Project codes\n\nEmployees of Acme receive 25 days of vacation per year. The secret project code name at Acme is BLUEBIRD, and its budget is 4 million.\n";
const GLOBEX: &str = "# Project codes\n\nEmployees of Globex receive 31 days of vacation per year. The secret project code name at Globex is REDWOLF, and its budget is 9 million.\n";

struct SecuredApp {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    verity: Arc<Verity>,
    /// Reads collection `shared` (group `team-a`) and `tenant-a`.
    key_a: String,
    key_a_id: String,
    /// Ingest scope only.
    key_ingest_only: String,
    _app: TestApp,
}

fn start(rate_limit_burst: u32) -> SecuredApp {
    let runtime = server_runtime();
    let (app, keys) = runtime.block_on(async {
        let mut builder = TestApp::builder().settings(|s| {
            s.auth.mode = AuthMode::Keys;
            s.auth.rate_limit_per_minute = 60;
            s.auth.rate_limit_burst = rate_limit_burst;
        });
        let docs = builder.docs();
        // The same two documents twice: in one collection told apart by access groups, and in
        // a collection per tenant.
        for (file, text, group, own_collection) in [
            ("acme.md", ACME, "team-a", "tenant-a"),
            ("globex.md", GLOBEX, "team-b", "tenant-b"),
        ] {
            let path = write(&docs.join("shared"), file, text);
            builder = builder.ingest(
                vec![path],
                IngestOptions::new("shared").with_groups(vec![group.to_string()]),
            );
            let path = write(&docs.join(own_collection), file, text);
            builder = builder.ingest(vec![path], IngestOptions::new(own_collection));
        }
        let app = builder.serve().await;
        let verity = &app.verity;
        let key_a = create_key(
            verity.store(),
            "tenant A's support tool",
            &[Scope::Query],
            Some(&["shared".to_string(), "tenant-a".to_string()]),
            &["team-a".to_string()],
        )
        .await
        .unwrap();
        let ingest_only = create_key(verity.store(), "uploader", &[Scope::Ingest], None, &[])
            .await
            .unwrap();
        (app, (key_a, ingest_only))
    });
    SecuredApp {
        runtime,
        base_url: app.base_url.clone(),
        verity: Arc::clone(&app.verity),
        key_a: keys.0.key,
        key_a_id: keys.0.id,
        key_ingest_only: keys.1.key,
        _app: app,
    }
}

fn app() -> &'static SecuredApp {
    static APP: OnceLock<SecuredApp> = OnceLock::new();
    APP.get_or_init(|| start(1000))
}

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    www_authenticate: Option<String>,
    text: String,
}

async fn ask(base_url: &str, key: Option<&str>, body: Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/v1/query"))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    Reply {
        status: response.status(),
        retry_after: header("retry-after"),
        www_authenticate: header("www-authenticate"),
        text: {
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(!text.is_empty(), "{status}: empty body");
            text
        },
    }
}

fn error_code(reply: &Reply) -> String {
    let body: Value = serde_json::from_str(&reply.text).unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn a_tenant_never_sees_another_tenants_documents_in_any_mode_streamed_or_not() {
    let app = app();
    app.runtime.block_on(async {
        let questions = [
            "What is the secret project code name?",
            // Quoting the other tenant's text word for word.
            "The secret project code name at Globex is REDWOLF, and its budget is 9 million.",
            "How many days of vacation do employees of Globex receive?",
        ];
        for collection in ["shared", "tenant-a"] {
            for mode in ["dense", "sparse", "hybrid"] {
                for stream in [false, true] {
                    for question in questions {
                        let reply = ask(
                            &app.base_url,
                            Some(&app.key_a),
                            json!({"question": question, "collection": collection,
                                   "mode": mode, "stream": stream}),
                        )
                        .await;
                        let context = format!("{collection}/{mode}/stream={stream}: {question}");
                        assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text);
                        for secret in ["REDWOLF", "Globex", "globex.md", "31 days", "9 million"] {
                            assert!(
                                !reply.text.contains(secret),
                                "{context}: tenant B's {secret:?} leaked: {}",
                                reply.text
                            );
                        }
                        assert!(reply.text.contains("acme.md"), "{context}: {}", reply.text);
                    }
                }
            }
        }
    });
}

#[test]
fn another_tenants_collection_answers_like_one_that_does_not_exist() {
    let app = app();
    app.runtime.block_on(async {
        let other = ask(
            &app.base_url,
            Some(&app.key_a),
            json!({"question": "code name?", "collection": "tenant-b"}),
        )
        .await;
        let missing = ask(
            &app.base_url,
            Some(&app.key_a),
            json!({"question": "code name?", "collection": "tenant-c"}),
        )
        .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            other.text.replace("tenant-b", "X"),
            missing.text.replace("tenant-c", "X")
        );
    });
}

#[test]
fn requests_without_a_valid_key_get_401() {
    let app = app();
    app.runtime.block_on(async {
        let body = json!({"question": "code name?", "collection": "shared"});
        let none = ask(&app.base_url, None, body.clone()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.www_authenticate.as_deref(), Some("Bearer"));
        assert_eq!(error_code(&none), "unauthenticated");
        assert!(none.text.contains("verity keys create"), "{}", none.text);

        // Change the last character, whatever it is: a key that ends in '0' must not be
        // "tampered" into itself (that made this test fail one run in sixteen).
        let (kept, last) = app.key_a.split_at(app.key_a.len() - 1);
        let tampered = format!("{kept}{}", if last == "0" { "1" } else { "0" });
        assert_ne!(tampered, app.key_a);
        for key in ["nonsense", "vk_000000000000_abc", tampered.as_str()] {
            let reply = ask(&app.base_url, Some(key), body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{key}");
        }

        let basic = reqwest::Client::new()
            .post(format!("{}/v1/query", app.base_url))
            .header("authorization", "Basic dXNlcjpwYXNz")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    });
}

#[test]
fn a_key_without_the_query_scope_gets_403() {
    let app = app();
    app.runtime.block_on(async {
        let reply = ask(
            &app.base_url,
            Some(&app.key_ingest_only),
            json!({"question": "code name?", "collection": "shared"}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&reply), "forbidden");
    });
}

#[test]
fn a_revoked_key_stops_working_at_once() {
    let app = app();
    app.runtime.block_on(async {
        let key = create_key(app.verity.store(), "temporary", &[Scope::Query], None, &[])
            .await
            .unwrap();
        let body = json!({"question": "code name?", "collection": "tenant-a"});
        assert_eq!(
            ask(&app.base_url, Some(&key.key), body.clone())
                .await
                .status,
            StatusCode::OK
        );
        app.verity.store().revoke_api_key(&key.id).await.unwrap();
        assert_eq!(
            ask(&app.base_url, Some(&key.key), body).await.status,
            StatusCode::UNAUTHORIZED
        );
        // The other keys are untouched, and listing shows the revocation, never a key.
        let keys = app.verity.store().list_api_keys().await.unwrap();
        let revoked = keys.iter().find(|k| k.id == key.id).unwrap();
        assert!(revoked.revoked_at.is_some());
        let a = keys.iter().find(|k| k.id == app.key_a_id).unwrap();
        assert!(a.revoked_at.is_none());
    });
}

#[test]
fn a_burst_over_the_rate_limit_gets_429_with_retry_after() {
    let app = start(3);
    app.runtime.block_on(async {
        let body = json!({"question": "code name?", "collection": "tenant-a"});
        let mut statuses = Vec::new();
        let mut limited = None;
        for _ in 0..5 {
            let reply = ask(&app.base_url, Some(&app.key_a), body.clone()).await;
            statuses.push(reply.status);
            if reply.status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(reply);
            }
        }
        assert_eq!(&statuses[..3], [StatusCode::OK; 3], "{statuses:?}");
        let limited = limited.expect("a request over the burst is refused");
        assert_eq!(error_code(&limited), "rate_limited");
        let retry: u64 = limited.retry_after.unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        // Another caller has its own budget.
        let other = ask(&app.base_url, Some(&app.key_ingest_only), body).await;
        assert_eq!(other.status, StatusCode::FORBIDDEN, "not rate limited");
    });
}

#[test]
fn serving_beyond_loopback_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = verity_command(dir.path(), None, &["serve", "--bind", "0.0.0.0:0"], None)
        .env_remove("VERITY_AUTH_MODE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("VERITY_AUTH_MODE=keys"), "{stderr}");
}

#[test]
fn keys_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = verity_command(dir.path(), None, args, None)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&run(&[
        "keys",
        "create",
        "--name",
        "support bot",
        "--scopes",
        "query,ingest",
        "--collections",
        "handbook",
        "--groups",
        "hr,it",
        "--json",
    ]))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("vk_{id}_")));

    let listed: Value = serde_json::from_str(&run(&["keys", "list", "--json"])).unwrap();
    let listed_text = listed.to_string();
    assert!(!listed_text.contains(key), "a key is never shown again");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["scopes"], json!(["query", "ingest"]));
    assert_eq!(listed[0]["collections"], json!(["handbook"]));
    assert_eq!(listed[0]["groups"], json!(["hr", "it"]));

    run(&["keys", "revoke", id]);
    let listed: Value = serde_json::from_str(&run(&["keys", "list", "--json"])).unwrap();
    assert!(listed[0]["revoked_at"].is_i64());

    let unknown = verity_command(dir.path(), None, &["keys", "revoke", "nope"], None)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let bad_scope = verity_command(
        dir.path(),
        None,
        &["keys", "create", "--name", "x", "--scopes", "root"],
        None,
    )
    .output()
    .unwrap();
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("query, ingest or admin"));
}

#[test]
fn collections_are_listed_as_the_caller_may_see_them_and_managed_with_the_admin_scope() {
    let app = app();
    app.runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/collections", app.base_url);
        let list = |key: String| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client.get(&url).bearer_auth(key).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.json::<Value>().await.unwrap()["collections"].clone()
            }
        };
        // Tenant A sees its two collections, and in the shared one only its own document.
        assert_eq!(
            list(app.key_a.clone()).await,
            json!([{"name": "shared", "documents": 1}, {"name": "tenant-a", "documents": 1}])
        );
        let denied = client
            .post(&url)
            .bearer_auth(&app.key_a)
            .json(&json!({"name": "scratch"}))
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);

        let admin = create_key(
            app.verity.store(),
            "admin",
            &[Scope::Admin, Scope::Query],
            None,
            &[],
        )
        .await
        .unwrap()
        .key;
        let create = |name: &str| {
            client
                .post(&url)
                .bearer_auth(&admin)
                .json(&json!({ "name": name }))
                .send()
        };
        assert_eq!(
            create("scratch").await.unwrap().status(),
            StatusCode::CREATED
        );
        assert_eq!(create("scratch").await.unwrap().status(), StatusCode::OK);
        assert_eq!(
            create("../etc").await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );

        let all = list(admin.clone()).await;
        let names: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"scratch") && names.contains(&"tenant-b"),
            "{all}"
        );
        // Without groups, the admin key reads only documents without groups.
        let shared = all
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "shared")
            .unwrap();
        assert_eq!(shared["documents"], 0);

        let delete = |name: &str| {
            client
                .delete(format!("{url}/{name}"))
                .bearer_auth(&admin)
                .send()
        };
        let deleted = delete("scratch").await.unwrap();
        assert_eq!(deleted.status(), StatusCode::OK);
        assert_eq!(
            deleted.json::<Value>().await.unwrap(),
            json!({"name": "scratch", "documents_removed": 0})
        );
        assert_eq!(
            delete("scratch").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    });
}
