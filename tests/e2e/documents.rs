//! The documents API, answer traces and feedback over HTTP with API keys: upload (multipart
//! and JSON) makes a document answerable at once, listing pages through what the caller may
//! read, a document or an answer of another tenant is a 404 exactly like an unknown id, delete
//! removes chunks and vectors, and every bad upload gets its own clear 4xx. Also the limits on
//! slow clients and on questions answered at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use verity_auth::{AuthMode, create_key};
use verity_core::{Answer, AnswerTrace, Scope, SearchFilter, Timings, document_id};
use verity_service::Verity;
use verity_service::pipeline::IngestOptions;

use crate::helpers::{BOUNDARY, Reply, TestApp, multipart, send, server_runtime, write};

const ACME: &str = "# Travel rules\n\nAcme staff book trains for trips under 600 kilometres. The Acme travel desk code is ORCHID-7.\n";
const GLOBEX: &str = "# Travel rules\n\nGlobex staff book flights for trips over 300 kilometres. The Globex travel desk code is MAPLE-3.\n";
const UPLOADED: &str = "# Parking\n\nThe staff car park on Rua Augusta opens at 06:30 and closes at 22:00. Night permits cost 45 euros a month.\n";

struct DocumentsApp {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    verity: Arc<Verity>,
    /// Query and ingest in `shared`, group `team-a`.
    key_a: String,
    /// Query and ingest in `shared`, group `team-b`.
    key_b: String,
    /// Query only, group `team-a`.
    key_reader: String,
    /// Every scope, every collection and group.
    key_admin: String,
    _app: TestApp,
}

fn app() -> &'static DocumentsApp {
    static APP: OnceLock<DocumentsApp> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = server_runtime();
        let (app, keys) = runtime.block_on(async {
            let mut builder = TestApp::builder().settings(|s| {
                s.auth.mode = AuthMode::Keys;
                s.auth.rate_limit_per_minute = 100_000;
                s.auth.rate_limit_burst = 10_000;
                s.server.max_upload_bytes = 64 * 1024;
                // Short, for the slow-client test, yet long enough for a busy 2-core machine.
                s.server.request_head_timeout_ms = 2_000;
                s.server.request_body_timeout_seconds = 2;
            });
            let docs = builder.docs();
            for (file, text, group) in
                [("acme.md", ACME, "team-a"), ("globex.md", GLOBEX, "team-b")]
            {
                let path = write(&docs, file, text);
                builder = builder.ingest(
                    vec![path],
                    IngestOptions::new("shared").with_groups(vec![group.to_string()]),
                );
            }
            let app = builder.open().await;
            let verity = &app.verity;
            let shared = Some(vec!["shared".to_string()]);
            let key = |scopes: &'static [Scope], group: Option<&'static str>| {
                let store = verity.store().clone();
                let collections = shared.clone();
                async move {
                    let groups: Vec<String> = group.map(str::to_string).into_iter().collect();
                    create_key(&store, "test", scopes, collections.as_deref(), &groups)
                        .await
                        .unwrap()
                        .key
                }
            };
            let keys = [
                key(&[Scope::Query, Scope::Ingest], Some("team-a")).await,
                key(&[Scope::Query, Scope::Ingest], Some("team-b")).await,
                key(&[Scope::Query], Some("team-a")).await,
                create_key(verity.store(), "admin", &Scope::ALL, None, &[])
                    .await
                    .unwrap()
                    .key,
            ];
            // A trace past traces.retention_days, written before the server starts: the
            // server deletes it without anyone asking anything.
            verity.store().insert_trace(&expired_trace()).await.unwrap();
            (app.serve().await, keys)
        });
        let [key_a, key_b, key_reader, key_admin] = keys;
        DocumentsApp {
            runtime,
            base_url: app.base_url.clone(),
            verity: Arc::clone(&app.verity),
            key_a,
            key_b,
            key_reader,
            key_admin,
            _app: app,
        }
    })
}

const EXPIRED_TRACE: &str = "00000000-0000-4000-8000-000000000031";

fn expired_trace() -> AnswerTrace {
    let days_ago_31 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 31 * 86_400;
    AnswerTrace {
        id: EXPIRED_TRACE.into(),
        caller: "key:old".into(),
        collection: "shared".into(),
        question: "What did we ask a month ago?".into(),
        mode: verity_core::RetrievalMode::Hybrid,
        candidates: Vec::new(),
        prompt_hash: None,
        generator: "extractive".into(),
        answer: Answer::default(),
        timings: Timings::default(),
        feedback: None,
        created_at: days_ago_31,
        redacted_at: None,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn post_documents(app: &DocumentsApp, key: &str) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/v1/documents", app.base_url))
        .bearer_auth(key)
}

async fn upload(app: &DocumentsApp, key: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
    send(
        post_documents(app, key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(parts)),
    )
    .await
}

async fn get(app: &DocumentsApp, key: &str, path: &str) -> Reply {
    send(
        client()
            .get(format!("{}{path}", app.base_url))
            .bearer_auth(key),
    )
    .await
}

async fn delete(app: &DocumentsApp, key: &str, path: &str) -> Reply {
    send(
        client()
            .delete(format!("{}{path}", app.base_url))
            .bearer_auth(key),
    )
    .await
}

async fn ask(app: &DocumentsApp, key: &str, question: &str) -> Reply {
    send(
        client()
            .post(format!("{}/v1/query", app.base_url))
            .bearer_auth(key)
            .json(&json!({"question": question, "collection": "shared"})),
    )
    .await
}

fn cited_sources(answer: &Value) -> Vec<String> {
    answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_uploaded_document_is_answerable_at_once_listed_read_updated_and_deleted() {
    let app = app();
    app.runtime.block_on(async {
        let file = "parking-a.md";
        let added = upload(
            app,
            &app.key_a,
            &[
                ("collection", None, b"shared"),
                ("file", Some(file), UPLOADED.as_bytes()),
            ],
        )
        .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        assert_eq!(added.body["status"], "added");
        let document = &added.body["document"];
        // Uploads of team-a default to team-a's groups and live in its namespace.
        assert_eq!(document["source"], format!("upload:/team-a/{file}"));
        assert_eq!(document["groups"], json!(["team-a"]));
        assert_eq!(document["title"], "Parking");
        let id = document["id"].as_str().unwrap().to_string();
        assert!(document["chunk_count"].as_u64().unwrap() >= 1);

        let answer = ask(
            app,
            &app.key_a,
            "When does the staff car park on Rua Augusta open?",
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(
            answer.body["grounding"]["status"], "grounded",
            "{}",
            answer.text
        );
        assert!(answer.body["answer"].as_str().unwrap().contains("06:30"));
        assert!(cited_sources(&answer.body).contains(&format!("upload:/team-a/{file}")));

        let read = get(app, &app.key_a, &format!("/v1/documents/{id}")).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        let chunks = read.body["chunks"].as_array().unwrap();
        assert!(chunks[0]["text"].as_str().unwrap().contains("Rua Augusta"));
        assert_eq!(chunks[0]["start"], 0);

        let again = upload(
            app,
            &app.key_a,
            &[
                ("collection", None, b"shared"),
                ("file", Some(file), UPLOADED.as_bytes()),
            ],
        )
        .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["status"], "unchanged");
        let changed = UPLOADED.replace("06:30", "07:15");
        let updated = upload(
            app,
            &app.key_a,
            &[
                ("collection", None, b"shared"),
                ("file", Some(file), changed.as_bytes()),
            ],
        )
        .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
        assert_eq!(updated.body["status"], "updated");
        assert_eq!(updated.body["document"]["version"], 2);
        let answer = ask(
            app,
            &app.key_a,
            "When does the staff car park on Rua Augusta open?",
        )
        .await;
        let text = answer.body["answer"].as_str().unwrap();
        assert!(text.contains("07:15") && !text.contains("06:30"), "{text}");

        let removed = delete(app, &app.key_a, &format!("/v1/documents/{id}")).await;
        assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
        assert_eq!(removed.body["deleted"]["id"], id.as_str());
        assert_eq!(
            get(app, &app.key_a, &format!("/v1/documents/{id}"))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let mut filter = SearchFilter::collection("shared");
        filter.groups = Some(vec!["team-a".to_string()]);
        let answer = ask(
            app,
            &app.key_a,
            "When does the staff car park on Rua Augusta open?",
        )
        .await;
        assert!(
            !cited_sources(&answer.body).iter().any(|s| s.contains(file)),
            "{}",
            answer.text
        );
        // Its chunks and vectors are gone; the other documents are untouched.
        assert!(app.verity.store().chunks_of(&id).await.unwrap().is_empty());
        assert!(
            app.verity
                .store()
                .document(&document_id("shared", &format!("upload:/team-a/{file}")))
                .await
                .unwrap()
                .is_none()
        );
        let index_points = app.verity.index().list_points("shared").await.unwrap();
        assert!(index_points.iter().all(|p| p.document_id != id));
        assert!(app.verity.index().count(&filter).await.unwrap() >= 1);
    });
}

#[test]
fn a_json_upload_with_explicit_groups_and_tags_is_read_by_its_extension() {
    let app = app();
    app.runtime.block_on(async {
        // Only a key in both groups may give a document both.
        let both = create_key(
            app.verity.store(),
            "both teams",
            &[Scope::Query, Scope::Ingest],
            None,
            &["team-a".to_string(), "team-b".to_string()],
        )
        .await
        .unwrap()
        .key;
        for key in [&app.key_admin, &app.key_a] {
            let refused = send(post_documents(app, key).json(
                &json!({"collection": "shared", "name": "canteen.txt", "groups": ["team-a", "team-b"], "text": "Lunch."}),
            ))
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        }
        let reply = send(
            post_documents(app, &both)
                .json(&json!({"collection": "shared", "name": "canteen.txt", "groups": ["team-a", "team-b"],
                              "tags": ["facilities"], "text": "The canteen serves lunch from 11:45 to 14:15 on weekdays."})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert_eq!(reply.body["document"]["source"], "upload:/team-a+team-b/canteen.txt");
        assert_eq!(reply.body["document"]["format"], "text");
        assert_eq!(reply.body["document"]["tags"], json!(["facilities"]));
        // Both teams read it.
        for key in [&app.key_a, &app.key_b] {
            let answer = ask(app, key, "When does the canteen serve lunch?").await;
            assert!(answer.body["answer"].as_str().unwrap().contains("11:45"), "{}", answer.text);
        }
        // A key with groups never publishes to everyone, even by saying so: `"groups": []`.
        let visitors = json!({"collection": "shared", "name": "visitors.md", "groups": [],
            "text": "# Visitors\n\nVisitors sign in at the reception desk on the ground floor and wear a badge."});
        let refused = send(post_documents(app, &app.key_a).json(&visitors)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert!(refused.body["error"]["message"].as_str().unwrap().contains("never public"));
        // A key without groups (it reads public documents only) publishes them.
        let public = send(post_documents(app, &app.key_admin).json(&visitors)).await;
        assert_eq!(public.status, StatusCode::CREATED, "{}", public.text);
        assert_eq!(public.body["document"]["source"], "upload:/*/visitors.md");
        let answer = ask(app, &app.key_b, "Where do visitors sign in?").await;
        assert!(answer.body["answer"].as_str().unwrap().contains("reception desk"), "{}", answer.text);
    });
}

#[test]
fn another_tenants_document_is_a_404_like_an_unknown_id_for_get_and_delete() {
    let app = app();
    app.runtime.block_on(async {
        let globex = app
            .verity
            .store()
            .documents_in_collection("shared")
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.source.ends_with("globex.md"))
            .unwrap()
            .id;
        let unknown = "00000000-0000-5000-8000-000000000000";
        for (method, other, missing) in [
            (
                "GET",
                get(app, &app.key_a, &format!("/v1/documents/{globex}")).await,
                get(app, &app.key_a, &format!("/v1/documents/{unknown}")).await,
            ),
            (
                "DELETE",
                delete(app, &app.key_a, &format!("/v1/documents/{globex}")).await,
                delete(app, &app.key_a, &format!("/v1/documents/{unknown}")).await,
            ),
        ] {
            assert_eq!(
                other.status,
                StatusCode::NOT_FOUND,
                "{method}: {}",
                other.text
            );
            assert_eq!(other.body["error"]["code"], "document_not_found");
            assert_eq!(
                other.text.replace(&globex, "ID"),
                missing.text.replace(unknown, "ID"),
                "{method}: the answers tell the two apart"
            );
        }
        // Still there for its own tenant.
        let own = get(app, &app.key_b, &format!("/v1/documents/{globex}")).await;
        assert_eq!(own.status, StatusCode::OK);
        assert!(
            own.body["chunks"][0]["text"]
                .as_str()
                .unwrap()
                .contains("MAPLE-3")
        );

        // Listing: team-a never sees Globex's document, nor a count that includes it.
        let listed = get(app, &app.key_a, "/v1/documents?collection=shared").await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        assert!(
            !listed.text.contains("globex") && !listed.text.contains("MAPLE"),
            "{}",
            listed.text
        );
        assert!(listed.text.contains("acme.md"));
        // Uploading the same file name as another tenant makes a document of one's own.
        let mine = upload(
            app,
            &app.key_a,
            &[
                ("collection", None, b"shared"),
                (
                    "file",
                    Some("globex.md"),
                    b"# Notes\n\nTeam A's notes about the spring offsite in Porto.",
                ),
            ],
        )
        .await;
        assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);
        let theirs = get(app, &app.key_b, &format!("/v1/documents/{globex}")).await;
        assert!(
            theirs.body["chunks"][0]["text"]
                .as_str()
                .unwrap()
                .contains("MAPLE-3")
        );
    });
}

#[test]
fn document_listing_pages_through_readable_documents() {
    let app = app();
    app.runtime.block_on(async {
        for n in 0..3 {
            let text = format!(
                "# Room {n}\n\nMeeting room {n} on the third floor seats {} people.",
                4 + n
            );
            let reply = upload(
                app,
                &app.key_b,
                &[
                    ("collection", None, b"shared"),
                    ("file", Some(&format!("room-{n}.md")), text.as_bytes()),
                ],
            )
            .await;
            assert!(reply.status.is_success(), "{}", reply.text);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/documents?collection=shared&limit=2&cursor={c}"),
                None => "/v1/documents?collection=shared&limit=2".to_string(),
            };
            let page = get(app, &app.key_b, &path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            let documents = page.body["documents"].as_array().unwrap();
            assert!(documents.len() <= 2);
            for d in documents {
                seen.push(d["source"].as_str().unwrap().to_string());
                let groups = d["groups"].as_array().unwrap();
                assert!(
                    groups.is_empty() || groups.iter().any(|g| g == "team-b"),
                    "{d}"
                );
            }
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "pages overlap or are out of order");
        for n in 0..3 {
            assert!(
                seen.contains(&format!("upload:/team-b/room-{n}.md")),
                "{seen:?}"
            );
        }
        assert!(seen.iter().any(|s| s.ends_with("globex.md")));
        assert!(!seen.iter().any(|s| s.ends_with("acme.md")), "{seen:?}");

        for (path, field) in [
            ("/v1/documents?collection=shared&limit=0", "limit"),
            ("/v1/documents?collection=shared&limit=201", "limit"),
            ("/v1/documents?collection=shared&cursor=zz", "cursor"),
        ] {
            let reply = get(app, &app.key_b, path).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(
                reply.body["error"]["details"]["field"], field,
                "{path}: {}",
                reply.text
            );
        }
        let reply = get(app, &app.key_b, "/v1/documents?collection=shared&color=red").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.body["error"]["code"], "invalid_request");
        let reply = get(app, &app.key_b, "/v1/documents?collection=tenant-x").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn bad_uploads_get_clear_errors_and_change_nothing() {
    let app = app();
    app.runtime.block_on(async {
        let file = |name: &'static str, bytes: &'static [u8]| {
            [
                ("collection", None, b"shared" as &[u8]),
                ("file", Some(name), bytes),
            ]
        };
        let cases: Vec<(&str, Reply, StatusCode, &str)> = vec![
            (
                "no file part",
                upload(app, &app.key_a, &[("collection", None, b"shared")]).await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "unknown field",
                upload(
                    app,
                    &app.key_a,
                    &[
                        ("colour", None, b"red"),
                        ("file", Some("a.md"), b"# A\n\ntext"),
                    ],
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "two files",
                upload(
                    app,
                    &app.key_a,
                    &[
                        ("file", Some("a.md"), b"# A\n\ntext"),
                        ("file", Some("b.md"), b"# B\n\ntext"),
                    ],
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "empty file",
                upload(app, &app.key_a, &file("empty.md", b"")).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_document",
            ),
            (
                "binary named .txt",
                upload(
                    app,
                    &app.key_a,
                    &file(
                        "tool.txt",
                        b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00\x00\x00\x01\x02\x03\x00\x00",
                    ),
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_document",
            ),
            (
                "unsupported type",
                upload(
                    app,
                    &app.key_a,
                    &file("run.exe", b"MZ\x90\x00\x03\x00\x00\x00"),
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_document",
            ),
            (
                "groups the key lacks",
                upload(
                    app,
                    &app.key_a,
                    &[
                        ("collection", None, b"shared"),
                        ("groups", None, b"team-b"),
                        ("file", Some("x.md"), b"# X\n\nsome text"),
                    ],
                )
                .await,
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                "invalid group name",
                upload(
                    app,
                    &app.key_admin,
                    &[
                        ("collection", None, b"shared"),
                        ("groups", None, b"bad group!"),
                        ("file", Some("x.md"), b"# X\n\nsome text"),
                    ],
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "no ingest scope",
                upload(app, &app.key_reader, &file("r.md", b"# R\n\nreader text")).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                "unknown collection",
                upload(
                    app,
                    &app.key_admin,
                    &[
                        ("collection", None, b"nowhere"),
                        ("file", Some("n.md"), b"# N\n\ntext"),
                    ],
                )
                .await,
                StatusCode::NOT_FOUND,
                "collection_not_found",
            ),
            (
                "forbidden collection",
                upload(
                    app,
                    &app.key_a,
                    &[
                        ("collection", None, b"other"),
                        ("file", Some("n.md"), b"# N\n\ntext"),
                    ],
                )
                .await,
                StatusCode::NOT_FOUND,
                "collection_not_found",
            ),
            (
                "bad file name",
                upload(app, &app.key_a, &file("..", b"# N\n\ntext")).await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "over the size limit",
                upload(
                    app,
                    &app.key_a,
                    &[
                        ("collection", None, b"shared"),
                        ("file", Some("big.md"), "word ".repeat(20_000).as_bytes()),
                    ],
                )
                .await,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                "not multipart nor JSON",
                send(
                    post_documents(app, &app.key_a)
                        .header("content-type", "text/plain")
                        .body("hello"),
                )
                .await,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                "malformed multipart",
                send(
                    post_documents(app, &app.key_a)
                        .header(
                            "content-type",
                            format!("multipart/form-data; boundary={BOUNDARY}"),
                        )
                        .body("--nonsense\r\n\r\n"),
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "malformed JSON",
                send(
                    post_documents(app, &app.key_a)
                        .header("content-type", "application/json")
                        .body("{\"name\": "),
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                "JSON without text",
                send(post_documents(app, &app.key_a).json(&json!({"name": "a.md"}))).await,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                "no key",
                send(
                    client()
                        .post(format!("{}/v1/documents", app.base_url))
                        .json(&json!({"name": "a.md", "text": "x"})),
                )
                .await,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            ),
        ];
        for (what, reply, status, code) in cases {
            assert_eq!(reply.status, status, "{what}: {}", reply.text);
            assert_eq!(reply.body["error"]["code"], code, "{what}: {}", reply.text);
            assert!(
                !reply.body["error"]["message"].as_str().unwrap().is_empty(),
                "{what}"
            );
        }
        // Other tests upload into the same collection at the same time: look for the names
        // refused here (all used by no other test).
        let refused = [
            "/empty.md",
            "/tool.txt",
            "/run.exe",
            "/x.md",
            "/r.md",
            "/n.md",
            "/big.md",
            "/a.md",
            "/b.md",
        ];
        for document in app
            .verity
            .store()
            .documents_in_collection("shared")
            .await
            .unwrap()
        {
            assert!(
                !refused.iter().any(|name| document.source.ends_with(name)),
                "a refused upload left {} behind",
                document.source
            );
        }
    });
}

#[test]
fn answers_have_traces_their_asker_can_read_and_rate_and_nobody_else_can() {
    let app = app();
    app.runtime.block_on(async {
        let answer = ask(app, &app.key_a, "Which transport do Acme staff book for short trips?").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let id = answer.body["id"].as_str().expect("the answer has an id").to_string();

        let trace = get(app, &app.key_a, &format!("/v1/answers/{id}")).await;
        assert_eq!(trace.status, StatusCode::OK, "{}", trace.text);
        let t = &trace.body;
        assert_eq!(t["question"], "Which transport do Acme staff book for short trips?");
        assert_eq!(t["collection"], "shared");
        assert_eq!(t["mode"], "hybrid");
        assert_eq!(t["generator"], "extractive");
        assert!(t["prompt_hash"].is_null(), "no model was asked");
        assert_eq!(t["answer"]["answer"], answer.body["answer"]);
        assert_eq!(t["answer"]["citations"], answer.body["citations"]);
        let candidates = t["candidates"].as_array().unwrap();
        assert!(!candidates.is_empty());
        assert_eq!(candidates[0]["rank"], 1);
        assert_eq!(candidates[0]["chunk_id"], answer.body["citations"][0]["chunk_id"]);
        assert!(t["timings"]["total_ms"].as_f64().unwrap() > 0.0);
        assert!(t["feedback"].is_null());

        let rated = send(
            client()
                .post(format!("{}/v1/feedback", app.base_url))
                .bearer_auth(&app.key_a)
                .json(&json!({"answer_id": id, "rating": "down", "comment": "It should say the 600 km rule first."})),
        )
        .await;
        assert_eq!(rated.status, StatusCode::CREATED, "{}", rated.text);
        let trace = get(app, &app.key_a, &format!("/v1/answers/{id}")).await;
        assert_eq!(trace.body["feedback"]["rating"], "down");
        assert_eq!(trace.body["feedback"]["comment"], "It should say the 600 km rule first.");
        // An admin reads the traces of answers from documents it may read: not this one
        // without groups (it reads public documents only), this one with team-a.
        assert_eq!(get(app, &app.key_admin, &format!("/v1/answers/{id}")).await.status, StatusCode::NOT_FOUND);
        let team_a_admin = create_key(
            app.verity.store(),
            "team-a admin",
            &[Scope::Query, Scope::Admin],
            None,
            &["team-a".to_string()],
        )
        .await
        .unwrap()
        .key;
        assert_eq!(get(app, &team_a_admin, &format!("/v1/answers/{id}")).await.status, StatusCode::OK);
        // It may read it, but only the asker rates it.
        let rating = send(
            client()
                .post(format!("{}/v1/feedback", app.base_url))
                .bearer_auth(&team_a_admin)
                .json(&json!({"answer_id": id, "rating": "up"})),
        )
        .await;
        assert_eq!(rating.status, StatusCode::FORBIDDEN, "{}", rating.text);

        // Another caller: the same 404 as an unknown answer, for reading and for rating.
        let unknown = uuid::Uuid::new_v4().to_string();
        let other = get(app, &app.key_b, &format!("/v1/answers/{id}")).await;
        let missing = get(app, &app.key_b, &format!("/v1/answers/{unknown}")).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
        assert_eq!(other.text.replace(&id, "ID"), missing.text.replace(&unknown, "ID"));
        let feedback = |key: &str, body: Value| {
            send(client().post(format!("{}/v1/feedback", app.base_url)).bearer_auth(key).json(&body))
        };
        let stolen = feedback(&app.key_b, json!({"answer_id": id, "rating": "up"})).await;
        assert_eq!(stolen.status, StatusCode::NOT_FOUND);
        let trace = get(app, &app.key_a, &format!("/v1/answers/{id}")).await;
        assert_eq!(trace.body["feedback"]["rating"], "down", "another caller changed the rating");

        for (body, status) in [
            (json!({"answer_id": id, "rating": "meh"}), StatusCode::BAD_REQUEST),
            (json!({"answer_id": id}), StatusCode::BAD_REQUEST),
            (json!({"answer_id": id, "rating": "up", "comment": "x".repeat(2001)}), StatusCode::BAD_REQUEST),
            (json!({"answer_id": id, "rating": "up", "stars": 5}), StatusCode::BAD_REQUEST),
        ] {
            let reply = feedback(&app.key_a, body.clone()).await;
            assert_eq!(reply.status, status, "{body}: {}", reply.text);
        }
    });
}

#[test]
fn a_deleted_documents_text_leaves_the_traces_of_answers_that_used_it() {
    let app = app();
    app.runtime.block_on(async {
        let file = "locker-codes.md";
        let secret = "The locker room door code is 4471-Q.";
        let added = upload(
            app,
            &app.key_a,
            &[
                ("collection", None, b"shared"),
                (
                    "file",
                    Some(file),
                    format!("# Lockers\n\n{secret}\n").as_bytes(),
                ),
            ],
        )
        .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        let document = added.body["document"]["id"].as_str().unwrap().to_string();
        let answer = ask(app, &app.key_a, "What is the locker room door code?").await;
        assert!(answer.text.contains("4471-Q"), "{}", answer.text);
        let id = answer.body["id"].as_str().unwrap().to_string();
        let trace = get(app, &app.key_a, &format!("/v1/answers/{id}")).await;
        assert!(trace.text.contains("4471-Q"), "{}", trace.text);
        assert!(trace.body["redacted_at"].is_null());

        let removed = delete(app, &app.key_a, &format!("/v1/documents/{document}")).await;
        assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
        let trace = get(app, &app.key_a, &format!("/v1/answers/{id}")).await;
        assert_eq!(trace.status, StatusCode::OK, "{}", trace.text);
        assert!(
            !trace.text.contains("4471-Q"),
            "the trace kept the deleted text: {}",
            trace.text
        );
        assert!(
            !trace.text.contains("Lockers"),
            "the trace kept the deleted title: {}",
            trace.text
        );
        assert!(
            trace.body["redacted_at"].as_i64().is_some(),
            "{}",
            trace.text
        );
        assert_eq!(trace.body["question"], "What is the locker room door code?");
        assert!(
            trace.body["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["document_id"] == document.as_str()),
            "the trace still says which document it drew on"
        );
    });
}

#[test]
fn expired_traces_are_deleted_while_the_server_runs_without_new_answers() {
    let app = app();
    app.runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while app
            .verity
            .store()
            .trace(EXPIRED_TRACE)
            .await
            .unwrap()
            .is_some()
        {
            assert!(
                Instant::now() < deadline,
                "a trace past traces.retention_days is still kept 20 s after the server started"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn me_says_who_the_caller_is() {
    let app = app();
    app.runtime.block_on(async {
        let me = get(app, &app.key_a, "/v1/me").await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["scopes"], json!(["query", "ingest"]));
        assert_eq!(me.body["collections"], json!(["shared"]));
        assert_eq!(me.body["groups"], json!(["team-a"]));
        assert!(me.body["subject"].as_str().unwrap().starts_with("key:"));
        let anonymous = send(client().get(format!("{}/v1/me", app.base_url))).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    });
}

/// Sends raw bytes, then reads the server's first response (head and `Content-Length` body),
/// or until it closes the connection; with a generous cap on the wait.
fn raw_exchange(base_url: &str, parts: &[&[u8]]) -> (String, Duration) {
    let address = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    for part in parts {
        stream.write_all(part).unwrap();
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let complete = std::str::from_utf8(&answer).ok().and_then(|text| {
            let (head, body) = text.split_once("\r\n\r\n")?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            (body.len() >= length).then_some(())
        });
        if complete.is_some() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn slow_clients_are_cut_off() {
    let app = app();
    // Headers that never end: the connection is answered 408 (or closed) after the 2 s head
    // timeout, not held.
    let (answer, took) = raw_exchange(&app.base_url, &[b"POST /v1/query HTTP/1.1\r\nHost: x\r\n"]);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");

    // A body that trickles: 408 in the error envelope after the 2 s body timeout.
    let head = format!(
        "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
        app.key_a
    );
    let (answer, took) = raw_exchange(&app.base_url, &[head.as_bytes(), b"{\"question\": "]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn questions_over_the_servers_capacity_are_refused_at_once_with_429() {
    let runtime = server_runtime();
    runtime.block_on(async {
        let builder = TestApp::builder().settings(|s| s.server.max_concurrent_queries = 1);
        let path = write(&builder.docs(), "acme.md", ACME);
        let app = builder
            .ingest(vec![path], IngestOptions::new("default"))
            .serve()
            .await;
        let base_url = app.base_url.clone();
        let question = "Which transport do Acme staff book for trips under 600 kilometres, and what is the travel desk code?";
        let requests = (0..32).map(|_| {
            let url = format!("{base_url}/v1/query");
            tokio::spawn(async move {
                let started = Instant::now();
                let response = client().post(url).json(&json!({"question": question, "top_k": 20})).send().await.unwrap();
                let status = response.status();
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                let body: Value = response.json().await.unwrap();
                (status, retry_after, body, started.elapsed())
            })
        });
        let results = futures_util::future::join_all(requests).await;
        let mut answered = 0;
        let mut refused = 0;
        for result in results {
            let (status, retry_after, body, _took) = result.unwrap();
            match status {
                StatusCode::OK => answered += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    refused += 1;
                    assert_eq!(body["error"]["code"], "busy");
                    assert_eq!(retry_after.as_deref(), Some("1"));
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert!(answered >= 1, "nothing was answered");
        assert!(refused >= 1, "32 questions at once with a limit of 1 were all admitted");
    });
}
