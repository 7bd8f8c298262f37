//! Ingest jobs over HTTP: a multipart job of several files (one broken) ends with a state per
//! file and its good documents answerable; the events stream follows it to `done`;
//! Idempotency-Key retries get the same job and a different body under the key a 409; cancel;
//! another caller's job is a 404 like an unknown id; server-side paths only under
//! `ingest.allowed_root`; and a `verity serve` killed mid-job resumes it on restart without
//! re-embedding the files it had finished.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use verity_auth::{AuthMode, create_key};
use verity_core::Scope;
use verity_service::Verity;

use crate::helpers::{
    BOUNDARY, Reply, TestApp, multipart, send, server_runtime, verity_command, write,
};
use verity_core::Caller;

const VACATION: &str = "# Vacation\n\nStaff of Acme carry over at most eight vacation days into the next year. The carry-over form is VAC-22.\n";
const BIKES: &str = "Bicycle parking is in the courtyard behind building C. Each bicycle needs a yellow sticker from the front desk.\n";

struct JobsApp {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    verity: Arc<Verity>,
    /// Query and ingest in `shared`, group `team-a`.
    key_a: String,
    /// Query and ingest in `shared`, group `team-b`.
    key_b: String,
    key_admin: String,
    /// `ingest.allowed_root`.
    root: std::path::PathBuf,
    test_app: TestApp,
}

fn app() -> &'static JobsApp {
    static APP: OnceLock<JobsApp> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = server_runtime();
        let (test_app, root, keys) = runtime.block_on(async {
            let builder = TestApp::builder();
            let root = builder.path().join("root");
            std::fs::create_dir_all(&root).unwrap();
            let app = builder
                .settings(|s| {
                    s.auth.mode = AuthMode::Keys;
                    s.auth.rate_limit_per_minute = 100_000;
                    s.auth.rate_limit_burst = 10_000;
                    s.server.max_upload_bytes = 64 * 1024;
                    s.server.max_job_upload_bytes = 256 * 1024;
                    s.ingest.allowed_root = Some(root.clone());
                })
                .open()
                .await;
            let verity = &app.verity;
            verity.store().ensure_collection("shared").await.unwrap();
            let shared = Some(vec!["shared".to_string()]);
            let mut keys = Vec::new();
            for group in ["team-a", "team-b"] {
                keys.push(
                    create_key(
                        verity.store(),
                        group,
                        &[Scope::Query, Scope::Ingest],
                        shared.as_deref(),
                        &[group.to_string()],
                    )
                    .await
                    .unwrap()
                    .key,
                );
            }
            keys.push(
                create_key(verity.store(), "admin", &Scope::ALL, None, &[])
                    .await
                    .unwrap()
                    .key,
            );
            verity_service::worker::start_serve_worker(Arc::clone(verity))
                .await
                .unwrap();
            (app.serve().await, root, keys)
        });
        let [key_a, key_b, key_admin]: [String; 3] = keys.try_into().unwrap();
        JobsApp {
            runtime,
            base_url: test_app.base_url.clone(),
            verity: Arc::clone(&test_app.verity),
            key_a,
            key_b,
            key_admin,
            root,
            test_app,
        }
    })
}

/// Writes `dir/name`, creating its directories.
fn post_job(
    base_url: &str,
    key: Option<&str>,
    parts: &[(&str, Option<&str>, &[u8])],
) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/v1/ingest/jobs"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(parts));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request
}

async fn get(base_url: &str, key: Option<&str>, path: &str) -> Reply {
    let mut request = reqwest::Client::new().get(format!("{base_url}{path}"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    send(request).await
}

/// Polls a job until nothing in it is queued or running.
async fn finished_job(base_url: &str, key: Option<&str>, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = get(base_url, key, &format!("/v1/ingest/jobs/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let state = reply.body["state"].as_str().unwrap().to_string();
        if state == "done" || state == "cancelled" {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn file<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {job}"))
}

async fn ask(base_url: &str, key: Option<&str>, collection: &str, question: &str) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/v1/query"))
        .json(&json!({"question": question, "collection": collection}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

#[test]
fn a_multipart_job_ends_with_a_state_per_file_and_its_good_documents_answerable() {
    let app = app();
    app.runtime.block_on(async {
        let broken_pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Kids [3 0 R";
        let reply = send(post_job(
            &app.base_url,
            Some(&app.key_a),
            &[
                ("collection", None, b"shared"),
                ("tags", None, b"handbook"),
                ("file", Some("vacation.md"), VACATION.as_bytes()),
                ("file", Some("broken.pdf"), broken_pdf),
                ("file", Some("bikes.txt"), BIKES.as_bytes()),
                ("file", Some("empty.md"), b""),
            ],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.body["id"].as_i64().unwrap();
        assert_eq!(reply.body["collection"], "shared");
        assert_eq!(reply.body["files"].as_array().unwrap().len(), 4);
        assert_eq!(file(&reply.body, "vacation.md")["source"], "upload:/team-a/vacation.md");

        let job = finished_job(&app.base_url, Some(&app.key_a), id).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(
            job["counts"],
            json!({"queued": 0, "parsing": 0, "embedding": 0, "indexed": 2, "unchanged": 0, "failed": 2, "cancelled": 0})
        );
        for name in ["vacation.md", "bikes.txt"] {
            assert_eq!(file(&job, name)["state"], "indexed", "{job}");
            assert_eq!(file(&job, name)["attempts"], 1);
            assert!(file(&job, name).get("reason").is_none());
        }
        for name in ["broken.pdf", "empty.md"] {
            let failed = file(&job, name);
            assert_eq!(failed["state"], "failed", "{job}");
            assert!(!failed["reason"].as_str().unwrap().is_empty(), "{job}");
        }
        let answer = ask(&app.base_url, Some(&app.key_a), "shared", "How many vacation days can Acme staff carry over?").await;
        assert!(answer["answer"].as_str().unwrap().contains("eight"), "{answer}");
        let answer = ask(&app.base_url, Some(&app.key_a), "shared", "Where is the bicycle parking?").await;
        assert!(answer["answer"].as_str().unwrap().contains("courtyard"), "{answer}");
        // Team b does not read team a's uploads.
        let answer = ask(&app.base_url, Some(&app.key_b), "shared", "Where is the bicycle parking?").await;
        assert!(!answer.to_string().contains("courtyard"), "{answer}");
        // Every uploaded file is gone from the data directory once its file is finished.
        let uploads = app.test_app.dir.path().join("data/uploads").join(format!("job-{id}"));
        assert!(!uploads.exists(), "{} still holds files", uploads.display());
    });
}

#[test]
fn the_events_stream_shows_each_file_and_the_progress_and_ends_with_done() {
    let app = app();
    app.runtime.block_on(async {
        let reply = send(post_job(
            &app.base_url,
            Some(&app.key_a),
            &[
                ("collection", None, b"shared"),
                (
                    "file",
                    Some("events-1.md"),
                    b"# Lockers\n\nLockers on floor two open with the staff badge.",
                ),
                ("file", Some("events-2.md"), b""),
            ],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.body["id"].as_i64().unwrap();
        let response = reqwest::Client::new()
            .get(format!("{}/v1/ingest/jobs/{id}/events", app.base_url))
            .bearer_auth(&app.key_a)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        // The stream ends by itself after `done`.
        let text = tokio::time::timeout(Duration::from_secs(120), response.text())
            .await
            .expect("the stream ends after done")
            .unwrap();
        let events: Vec<(String, Value)> = text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                (
                    name.strip_prefix("event: ").unwrap().to_string(),
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
                )
            })
            .collect();
        let (last, done) = events.last().unwrap();
        assert_eq!(last, "done", "{text}");
        assert_eq!(done["counts"]["indexed"], 1, "{text}");
        assert_eq!(done["counts"]["failed"], 1, "{text}");
        assert!(events.iter().any(|(name, _)| name == "progress"), "{text}");
        let finals: Vec<_> = events
            .iter()
            .filter(|(name, data)| {
                name == "file" && (data["state"] == "indexed" || data["state"] == "failed")
            })
            .map(|(_, data)| data.clone())
            .collect();
        assert_eq!(finals.len(), 2, "{text}");
        let failed = finals.iter().find(|d| d["name"] == "events-2.md").unwrap();
        assert_eq!(failed["state"], "failed");
        assert!(failed["reason"].is_string(), "{text}");
        assert_eq!(failed["source"], "upload:/team-a/events-2.md");
        // Unknown and other callers' jobs: 404 before any event.
        let other = get(
            &app.base_url,
            Some(&app.key_b),
            &format!("/v1/ingest/jobs/{id}/events"),
        )
        .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    });
}

#[test]
fn an_idempotency_key_returns_the_same_job_and_refuses_a_different_request() {
    let app = app();
    app.runtime.block_on(async {
        let parts: &[(&str, Option<&str>, &[u8])] = &[
            ("collection", None, b"shared"),
            (
                "file",
                Some("retry.md"),
                b"# Retry\n\nThe printer on floor three prints double-sided by default.",
            ),
        ];
        let first = send(
            post_job(&app.base_url, Some(&app.key_a), parts).header("Idempotency-Key", "upload-42"),
        )
        .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
        let again = send(
            post_job(&app.base_url, Some(&app.key_a), parts).header("Idempotency-Key", "upload-42"),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.body["id"], first.body["id"]);

        let changed: &[(&str, Option<&str>, &[u8])] = &[
            ("collection", None, b"shared"),
            (
                "file",
                Some("retry.md"),
                b"# Retry\n\nSomething else entirely.",
            ),
        ];
        let conflict = send(
            post_job(&app.base_url, Some(&app.key_a), changed)
                .header("Idempotency-Key", "upload-42"),
        )
        .await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
        assert_eq!(conflict.body["error"]["code"], "idempotency_conflict");
        assert_eq!(
            conflict.body["error"]["details"]["job_id"],
            first.body["id"]
        );

        // Another caller's key is its own.
        let other = send(
            post_job(&app.base_url, Some(&app.key_b), parts).header("Idempotency-Key", "upload-42"),
        )
        .await;
        assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
        assert_ne!(other.body["id"], first.body["id"]);

        // A bad key is a 400 naming the header; a JSON retry works the same way.
        let bad = send(
            post_job(&app.base_url, Some(&app.key_a), parts)
                .header("Idempotency-Key", "x".repeat(300)),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
        assert_eq!(bad.body["error"]["details"]["field"], "Idempotency-Key");
        write(&app.root, "idem.md", "# Idem\n\nThe gym opens at 06:00.");
        let body = json!({"collection": "shared", "paths": ["idem.md"]});
        let post = |body: Value| {
            send(
                reqwest::Client::new()
                    .post(format!("{}/v1/ingest/jobs", app.base_url))
                    .bearer_auth(&app.key_admin)
                    .header("Idempotency-Key", "paths-1")
                    .json(&body),
            )
        };
        let first = post(body.clone()).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
        let again = post(body).await;
        assert_eq!(
            (again.status, &again.body["id"]),
            (StatusCode::OK, &first.body["id"])
        );
        let conflict =
            post(json!({"collection": "shared", "paths": ["idem.md"], "tags": ["x"]})).await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
        finished_job(
            &app.base_url,
            Some(&app.key_admin),
            first.body["id"].as_i64().unwrap(),
        )
        .await;
    });
}

#[test]
fn another_callers_job_is_a_404_like_an_unknown_one_and_an_admin_sees_it() {
    let app = app();
    app.runtime.block_on(async {
        let reply = send(post_job(
            &app.base_url,
            Some(&app.key_a),
            &[
                ("collection", None, b"shared"),
                (
                    "file",
                    Some("mine.md"),
                    b"# Mine\n\nOnly team a reads this.",
                ),
            ],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.body["id"].as_i64().unwrap();
        let unknown = 987_654_321;
        for (method, path, unknown_path) in [
            (
                "GET",
                format!("/v1/ingest/jobs/{id}"),
                format!("/v1/ingest/jobs/{unknown}"),
            ),
            (
                "DELETE",
                format!("/v1/ingest/jobs/{id}"),
                format!("/v1/ingest/jobs/{unknown}"),
            ),
        ] {
            let request = |path: &str| {
                let url = format!("{}{path}", app.base_url);
                let client = reqwest::Client::new();
                let request = if method == "GET" {
                    client.get(url)
                } else {
                    client.delete(url)
                };
                request.bearer_auth(&app.key_b)
            };
            let other = send(request(&path)).await;
            let missing = send(request(&unknown_path)).await;
            assert_eq!(
                other.status,
                StatusCode::NOT_FOUND,
                "{method}: {}",
                other.text
            );
            assert_eq!(other.body["error"]["code"], "job_not_found");
            assert_eq!(
                other.text.replace(&id.to_string(), "ID"),
                missing.text.replace(&unknown.to_string(), "ID"),
                "{method}: the answers tell the two apart"
            );
        }
        assert_eq!(
            get(
                &app.base_url,
                Some(&app.key_b),
                "/v1/ingest/jobs/not-a-number"
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        // An admin of the collection sees it if it may read what the job writes: not the one
        // without groups (public documents only), the one of team-a.
        assert_eq!(
            get(
                &app.base_url,
                Some(&app.key_admin),
                &format!("/v1/ingest/jobs/{id}")
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        let team_a_admin = create_key(
            app.verity.store(),
            "team-a admin",
            &[Scope::Ingest, Scope::Admin],
            None,
            &["team-a".to_string()],
        )
        .await
        .unwrap()
        .key;
        let admin = finished_job(&app.base_url, Some(&team_a_admin), id).await;
        assert_eq!(admin["state"], "done");
        // Without the ingest scope, nothing.
        let reader = create_key(app.verity.store(), "reader", &[Scope::Query], None, &[])
            .await
            .unwrap()
            .key;
        assert_eq!(
            get(
                &app.base_url,
                Some(&reader),
                &format!("/v1/ingest/jobs/{id}")
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
    });
}

#[test]
fn server_side_paths_are_ingested_only_under_the_allowed_root() {
    let app = app();
    app.runtime.block_on(async {
        write(
            &app.root,
            "policies/canteen.md",
            "# Canteen\n\nThe canteen serves breakfast from 07:30 to 09:45.",
        );
        write(
            app.test_app.dir.path(),
            "outside.md",
            "# Outside\n\nThe secret code is PLUM-9.",
        );
        std::os::unix::fs::symlink(
            app.test_app.dir.path().join("outside.md"),
            app.root.join("sneaky.md"),
        )
        .unwrap();
        let post = |body: Value| {
            send(
                reqwest::Client::new()
                    .post(format!("{}/v1/ingest/jobs", app.base_url))
                    .bearer_auth(&app.key_a)
                    .json(&body),
            )
        };
        let outside = app
            .test_app
            .dir
            .path()
            .join("outside.md")
            .display()
            .to_string();
        for path in [
            outside.as_str(),
            "../outside.md",
            "policies/../../outside.md",
            "sneaky.md",
        ] {
            let refused = post(json!({"collection": "shared", "paths": [path]})).await;
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                refused.text
            );
            assert!(
                refused.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("ingest.allowed_root")
            );
        }
        let missing = post(json!({"collection": "shared", "paths": ["nope.md"]})).await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
        let urls = post(json!({"collection": "shared", "urls": ["https://example.com"]})).await;
        assert_eq!(urls.status, StatusCode::BAD_REQUEST, "{}", urls.text);

        let accepted = post(json!({"collection": "shared", "paths": ["policies"]})).await;
        assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text);
        let id = accepted.body["id"].as_i64().unwrap();
        let job = finished_job(&app.base_url, Some(&app.key_a), id).await;
        let canteen = file(&job, "policies/canteen.md");
        assert_eq!(canteen["state"], "indexed", "{job}");
        assert!(
            canteen["source"]
                .as_str()
                .unwrap()
                .ends_with("/root/policies/canteen.md")
        );
        let answer = ask(
            &app.base_url,
            Some(&app.key_a),
            "shared",
            "When does the canteen serve breakfast?",
        )
        .await;
        assert!(
            answer["answer"].as_str().unwrap().contains("07:30"),
            "{answer}"
        );
        assert!(!answer.to_string().contains("PLUM-9"));
    });
}

#[test]
fn cancelling_a_queued_job_cancels_its_files_and_removes_their_uploads_and_paths_need_a_root() {
    let runtime = server_runtime();
    runtime.block_on(async {
        // No worker and no allowed root: the files stay queued until cancelled.
        let app = TestApp::builder().open().await;
        let data = app.settings.data_dir.clone();
        let verity = Arc::clone(&app.verity);
        verity.store().ensure_collection("kb").await.unwrap();
        let app = app.serve().await;
        let base_url = app.base_url.clone();
        let reply = send(post_job(
            &base_url,
            None,
            &[
                ("collection", None, b"kb"),
                ("file", Some("a.md"), b"# A\n\nAlpha."),
                ("file", Some("b.md"), b"# B\n\nBeta."),
            ],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert_eq!(reply.body["state"], "queued");
        assert_eq!(reply.body["counts"]["queued"], 2);
        let id = reply.body["id"].as_i64().unwrap();
        let uploads = data.join("uploads").join(format!("job-{id}"));
        assert_eq!(
            std::fs::read_dir(&uploads).unwrap().count(),
            2,
            "the uploads are kept for the worker"
        );

        event_streams_are_limited_per_caller(&base_url, id).await;
        a_form_of_too_many_files_is_refused_and_leaves_nothing(&base_url, &data).await;

        let cancelled =
            send(reqwest::Client::new().delete(format!("{base_url}/v1/ingest/jobs/{id}"))).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
        assert_eq!(cancelled.body["state"], "cancelled");
        assert_eq!(cancelled.body["counts"]["cancelled"], 2);
        assert!(
            cancelled.body["files"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["state"] == "cancelled")
        );
        assert!(!uploads.exists(), "cancelled uploads are removed");
        // Cancelling again answers the same job.
        let again =
            send(reqwest::Client::new().delete(format!("{base_url}/v1/ingest/jobs/{id}"))).await;
        assert_eq!(
            (again.status, &again.body["state"]),
            (StatusCode::OK, &json!("cancelled"))
        );
        // A worker finds nothing to do.
        let report = verity
            .run_worker(
                &Caller::local(),
                &verity_service::worker::WorkerOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.files_done + report.files_failed, 0);

        let paths = send(
            reqwest::Client::new()
                .post(format!("{base_url}/v1/ingest/jobs"))
                .json(&json!({"collection": "kb", "paths": ["/etc/hostname"]})),
        )
        .await;
        assert_eq!(paths.status, StatusCode::FORBIDDEN, "{}", paths.text);
        assert!(
            paths.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("set it"),
            "{}",
            paths.text
        );
        // Every bad form gets its own 4xx.
        let none = send(post_job(&base_url, None, &[("collection", None, b"kb")])).await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.text);
        let twice = send(post_job(
            &base_url,
            None,
            &[
                ("file", Some("x.md"), b"1"),
                ("file", Some("x.md"), b"2"),
                ("collection", None, b"kb"),
            ],
        ))
        .await;
        assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.text);
        let unknown = send(post_job(
            &base_url,
            None,
            &[("file", Some("x.md"), b"1"), ("colour", None, b"red")],
        ))
        .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
        let nowhere = send(post_job(
            &base_url,
            None,
            &[
                ("file", Some("x.md"), b"1"),
                ("collection", None, b"missing"),
            ],
        ))
        .await;
        assert_eq!(nowhere.status, StatusCode::NOT_FOUND, "{}", nowhere.text);
        let text = send(
            reqwest::Client::new()
                .post(format!("{base_url}/v1/ingest/jobs"))
                .header("content-type", "text/plain")
                .body("hi"),
        )
        .await;
        assert_eq!(
            text.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{}",
            text.text
        );
        // Nothing a refused request sent is kept.
        let left: Vec<_> = std::fs::read_dir(data.join("uploads"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    });
}

/// A caller watches at most four jobs' events at once (each stream reads the store several
/// times a second); a fifth is a 429 with Retry-After until one is closed. `id` stays queued.
async fn event_streams_are_limited_per_caller(base_url: &str, id: i64) {
    let open = || {
        reqwest::Client::new()
            .get(format!("{base_url}/v1/ingest/jobs/{id}/events"))
            .send()
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let stream = open().await.unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        streams.push(stream);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "5");
    // A client that leaves frees its place once the server notices (at its next heartbeat).
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = open().await.unwrap();
        if stream.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream never freed its place"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A form of more than 1,000 file parts (each would be a staged file written and synced) is a
/// 413 before anything is kept; the staged files of its first thousand are removed.
async fn a_form_of_too_many_files_is_refused_and_leaves_nothing(base_url: &str, data: &Path) {
    let names: Vec<String> = (0..1_001).map(|n| format!("empty-{n}.md")).collect();
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("collection", None, b"kb")];
    parts.extend(
        names
            .iter()
            .map(|name| ("file", Some(name.as_str()), &b""[..])),
    );
    let reply = send(post_job(base_url, None, &parts)).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert!(reply.text.contains("at most 1000 files"), "{}", reply.text);
    let staged: Vec<_> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("staging-"))
        .collect();
    assert!(staged.is_empty(), "staged files left behind: {staged:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(data: &Path, port: u16, fault: Option<&str>) -> Child {
    verity_command(
        data,
        None,
        &["serve", "--bind", &format!("127.0.0.1:{port}")],
        fault,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

async fn wait_ready(base_url: &str, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("{base_url}/healthz")).await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited before it was ready"
        );
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_its_job_on_restart_without_re_embedding_finished_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `verity ingest` leaves a job with a state per file too.
    let seed = write(
        dir.path(),
        "seed/intro.md",
        "# Intro\n\nThe office opens at 08:00.",
    );
    let ingest = verity_command(
        &data,
        None,
        &[
            "ingest",
            seed.to_str().unwrap(),
            "--collection",
            "kb",
            "--json",
        ],
        None,
    )
    .output()
    .unwrap();
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    let report: Value = serde_json::from_slice(&ingest.stdout).unwrap();
    assert_eq!(report["documents_added"], 1, "{report}");
    let seed_job = report["job"].as_i64().expect("the ingest names its job");
    let progress = verity_command(&data, None, &["job", &seed_job.to_string(), "--json"], None)
        .output()
        .unwrap();
    let progress: Value = serde_json::from_slice(&progress.stdout).unwrap();
    assert_eq!(
        (progress["done"].as_i64(), progress["running"].as_i64()),
        (Some(1), Some(0)),
        "{progress}"
    );

    // The server is killed while writing the third file's document.
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&data, port, Some("after_store_write#3"));
    wait_ready(&base_url, &mut server).await;
    let texts: Vec<String> = (1..=4)
        .map(|i| format!("# Room {i}\n\nMeeting room {i} seats {} people and is booked through desk code ROOM-{i}{i}.", i * 4))
        .collect();
    let names: Vec<String> = (1..=4).map(|i| format!("room-{i}.md")).collect();
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("collection", None, b"kb")];
    for (name, text) in names.iter().zip(&texts) {
        parts.push(("file", Some(name.as_str()), text.as_bytes()));
    }
    let created = send(post_job(&base_url, None, &parts)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server was not killed at the fault point"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Restarted, it resumes the job at once.
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&data, port, None);
    wait_ready(&base_url, &mut server).await;
    let job = finished_job(&base_url, None, id).await;
    let documents = get(&base_url, None, "/v1/documents?collection=kb").await;
    let answer = ask(
        &base_url,
        None,
        "kb",
        "How many people does meeting room 4 seat?",
    )
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["counts"]["indexed"], 4, "{job}");
    let attempts: Vec<_> = names
        .iter()
        .map(|n| file(&job, n)["attempts"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        [1, 1, 2, 1],
        "only the file the crash interrupted was taken again: {job}"
    );
    // Finished files were not written again: their documents are still at version 1.
    let versions: Vec<(String, i64)> = documents.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_string(),
                d["version"].as_i64().unwrap(),
            )
        })
        .collect();
    for (name, version) in [("room-1.md", 1), ("room-2.md", 1), ("room-4.md", 1)] {
        assert!(
            versions.contains(&(format!("upload:/*/{name}"), version)),
            "{versions:?}"
        );
    }
    assert!(
        answer["answer"].as_str().unwrap().contains("16"),
        "{answer}"
    );
    assert!(!data.join("uploads").join(format!("job-{id}")).exists());
}
