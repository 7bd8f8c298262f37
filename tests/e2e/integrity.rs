//! Data integrity where the access matrix cannot look: what the ingest worker does when the
//! world changed after a job was accepted (a file swapped for a symbolic link, a document
//! ingested meanwhile by another group, a collection deleted, a key revoked), the open
//! default against other web pages (DNS rebinding, cross-site form posts), refused credentials
//! under the rate limit, and concurrent writes of one document.

use std::sync::Arc;

use reqwest::StatusCode;
use verity_auth::{AuthMode, create_key};
use verity_core::{
    Caller, Collections, Documents, IngestJobs, JobCreation, JobInput, NewIngestJob, Scope,
    SearchFilter, Upload, document_id,
};
use verity_service::Verity;
use verity_service::pipeline::{IngestOptions, Quiet};
use verity_service::worker::WorkerOptions;

use crate::helpers::{BOUNDARY, TestApp, multipart, send, server_runtime, write};
use verity_service::pipeline::IngestInput;

const SECRET: &str = "# Secret\n\nThe vault combination outside the root is ZEBRA-5521.\n";

fn key_caller(id: &str, groups: &[&str]) -> Caller {
    Caller {
        subject: format!("key:{id}"),
        scopes: vec![Scope::Query, Scope::Ingest],
        collections: None,
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
    }
}

fn paths_job(collection: &str, paths: &[&str]) -> NewIngestJob {
    NewIngestJob {
        collection: Some(collection.to_string()),
        groups: None,
        tags: Vec::new(),
        language: None,
        input: JobInput::Paths(paths.iter().map(|p| p.to_string()).collect()),
        idempotency_key: None,
    }
}

async fn created(verity: &Verity, caller: &Caller, job: NewIngestJob) -> i64 {
    match verity.create_job(caller, job).await.unwrap() {
        JobCreation::Created(job) => job.id,
        other => panic!("{other:?}"),
    }
}

/// The state and reason of a job's only file, as its creator sees it.
async fn only_file(verity: &Verity, caller: &Caller, id: i64) -> (String, String) {
    let job = verity.ingest_job(caller, id).await.unwrap();
    let file = &job.files[0];
    (
        serde_json::to_value(file.state)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string(),
        file.reason.clone().unwrap_or_default(),
    )
}

async fn count(verity: &Verity, collection: &str) -> usize {
    verity
        .index()
        .count(&SearchFilter::collection(collection))
        .await
        .unwrap()
}

#[test]
fn a_file_swapped_for_a_link_after_its_job_was_accepted_is_not_read() {
    server_runtime().block_on(async {
        let builder = TestApp::builder();
        let base = builder.path().canonicalize().unwrap();
        let root = base.join("root");
        write(
            &root,
            "policies/canteen.md",
            "# Canteen\n\nBreakfast is from 07:30.\n",
        );
        let secret = write(&base, "secret.md", SECRET);
        let app = builder
            .settings(|s| s.ingest.allowed_root = Some(root.clone()))
            .open()
            .await;
        let verity = &app.verity;
        verity.store().ensure_collection("handbook").await.unwrap();
        let key = create_key(verity.store(), "k", &[Scope::Ingest], None, &["hr".into()])
            .await
            .unwrap();
        let caller = key_caller(&key.id, &["hr"]);
        // Accepted while the file is a plain file under the root…
        let id = created(
            verity,
            &caller,
            paths_job("handbook", &["policies/canteen.md"]),
        )
        .await;
        // …then swapped for a link out before a worker takes it.
        let accepted = root.join("policies/canteen.md");
        std::fs::remove_file(&accepted).unwrap();
        std::os::unix::fs::symlink(&secret, &accepted).unwrap();
        verity
            .run_worker(&Caller::local(), &WorkerOptions::default())
            .await
            .unwrap();
        let (state, reason) = only_file(verity, &caller, id).await;
        assert_eq!(state, "failed", "{reason}");
        assert!(
            reason.contains("outside") || reason.contains("symbolic link"),
            "{reason}"
        );
        assert_eq!(count(verity, "handbook").await, 0);
    });
}

#[test]
fn a_directory_swapped_for_a_link_after_its_job_was_accepted_is_not_followed() {
    server_runtime().block_on(async {
        let builder = TestApp::builder();
        let base = builder.path().canonicalize().unwrap();
        let root = base.join("root");
        write(
            &root,
            "policies/canteen.md",
            "# Canteen\n\nBreakfast is from 07:30.\n",
        );
        write(&base, "elsewhere/canteen.md", SECRET);
        let app = builder
            .settings(|s| s.ingest.allowed_root = Some(root.clone()))
            .open()
            .await;
        let verity = &app.verity;
        verity.store().ensure_collection("handbook").await.unwrap();
        let key = create_key(verity.store(), "k", &[Scope::Ingest], None, &["hr".into()])
            .await
            .unwrap();
        let caller = key_caller(&key.id, &["hr"]);
        let id = created(
            verity,
            &caller,
            paths_job("handbook", &["policies/canteen.md"]),
        )
        .await;
        std::fs::remove_dir_all(root.join("policies")).unwrap();
        std::os::unix::fs::symlink(base.join("elsewhere"), root.join("policies")).unwrap();
        verity
            .run_worker(&Caller::local(), &WorkerOptions::default())
            .await
            .unwrap();
        let (state, reason) = only_file(verity, &caller, id).await;
        assert_eq!(state, "failed", "{reason}");
        assert_eq!(count(verity, "handbook").await, 0);
    });
}

#[test]
fn a_document_stored_by_another_group_after_the_job_was_accepted_is_not_taken_over() {
    server_runtime().block_on(async {
        let builder = TestApp::builder();
        let base = builder.path().canonicalize().unwrap();
        let root = base.join("root");
        let path = write(
            &root,
            "finance/salaries.md",
            "# Salaries\n\nThe CFO salary is 240,000 euros.\n",
        );
        let app = builder
            .settings(|s| s.ingest.allowed_root = Some(root.clone()))
            .open()
            .await;
        let verity = &app.verity;
        verity.store().ensure_collection("handbook").await.unwrap();
        let key = create_key(verity.store(), "k", &[Scope::Ingest], None, &["hr".into()])
            .await
            .unwrap();
        let caller = key_caller(&key.id, &["hr"]);
        // Nothing stored yet: the job is accepted.
        let id = created(
            verity,
            &caller,
            paths_job("handbook", &["finance/salaries.md"]),
        )
        .await;
        // The operator ingests the file for finance before the worker gets to it.
        verity
            .ingest(
                &Caller::local(),
                IngestInput::Paths(vec![path.clone()]),
                &IngestOptions::new("handbook").with_groups(vec!["finance".into()]),
                &Quiet,
            )
            .await
            .unwrap();
        std::fs::write(&path, "# Salaries\n\nThe CFO salary is now public.\n").unwrap();
        verity
            .run_worker(&Caller::local(), &WorkerOptions::default())
            .await
            .unwrap();
        let (state, reason) = only_file(verity, &caller, id).await;
        assert_eq!(state, "failed", "{reason}");
        assert!(reason.contains("may not write"), "{reason}");
        let stored = verity
            .store()
            .document(&document_id("handbook", &path.display().to_string()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.groups, vec!["finance".to_string()]);
        // And a path job naming it now is refused at once.
        let refused = verity
            .create_job(&caller, paths_job("handbook", &["finance/salaries.md"]))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, verity_core::VerityError::Forbidden(_)),
            "{refused}"
        );
    });
}

#[test]
fn a_queued_job_stops_when_its_collection_is_deleted_or_its_key_revoked() {
    server_runtime().block_on(async {
        let builder = TestApp::builder();
        let base = builder.path().canonicalize().unwrap();
        let root = base.join("root");
        write(
            &root,
            "a.md",
            "# A\n\nThe first note says the canteen opens at eight.\n",
        );
        write(
            &root,
            "b.md",
            "# B\n\nThe second note says the gym opens at nine.\n",
        );
        let app = builder
            .settings(|s| s.ingest.allowed_root = Some(root.clone()))
            .open()
            .await;
        let verity = &app.verity;
        for collection in ["gone", "kept"] {
            verity.store().ensure_collection(collection).await.unwrap();
        }
        let key = create_key(verity.store(), "k", &[Scope::Ingest], None, &["hr".into()])
            .await
            .unwrap();
        let caller = key_caller(&key.id, &["hr"]);
        let deleted = created(verity, &caller, paths_job("gone", &["a.md"])).await;
        Collections::delete_collection(verity.as_ref(), &Caller::local(), "gone")
            .await
            .unwrap();
        verity
            .run_worker(&Caller::local(), &WorkerOptions::default())
            .await
            .unwrap();
        let (state, reason) = only_file(verity, &caller, deleted).await;
        assert_eq!(state, "failed");
        assert!(reason.contains("was deleted"), "{reason}");
        assert!(!verity.store().collection_exists("gone").await.unwrap());

        let revoked = created(verity, &caller, paths_job("kept", &["b.md"])).await;
        verity.store().revoke_api_key(&key.id).await.unwrap();
        verity
            .run_worker(&Caller::local(), &WorkerOptions::default())
            .await
            .unwrap();
        let (state, reason) = only_file(verity, &caller, revoked).await;
        assert_eq!(state, "failed");
        assert!(reason.contains("revoked"), "{reason}");
        assert_eq!(count(verity, "kept").await, 0);
    });
}

#[test]
fn concurrent_uploads_and_deletes_of_one_document_leave_index_and_store_agreeing() {
    server_runtime().block_on(async {
        let app = TestApp::builder().open().await;
        let verity = Arc::clone(&app.verity);
        verity.store().ensure_collection("notes").await.unwrap();
        let caller = Caller::local();
        let upload = |n: usize| Upload {
            file_name: "memo.md".to_string(),
            bytes: format!(
                "# Memo\n\nVersion {n} of the memo: the meeting room on floor {n} is booked.\n\n## Details\n\nBring the badge number {n}{n}{n} to the desk.\n"
            )
            .into_bytes(),
            collection: Some("notes".to_string()),
            groups: None,
            tags: Vec::new(),
        };
        for round in 0..6 {
            let (a, b) = (Arc::clone(&verity), Arc::clone(&verity));
            let caller_a = caller.clone();
            let caller_b = caller.clone();
            let first = tokio::spawn({
                let u = upload(round * 2);
                async move { a.upload_document(&caller_a, u).await }
            });
            let second = tokio::spawn({
                let u = upload(round * 2 + 1);
                async move { b.upload_document(&caller_b, u).await }
            });
            let id = first.await.unwrap().unwrap().document.id;
            second.await.unwrap().unwrap();
            let chunks = verity.store().chunks_of(&id).await.unwrap().len();
            assert_eq!(count(&verity, "notes").await, chunks, "round {round}");
            // A delete racing an upload: afterwards the index holds exactly the store's chunks.
            let (c, d) = (Arc::clone(&verity), Arc::clone(&verity));
            let caller_c = caller.clone();
            let caller_d = caller.clone();
            let id_d = id.clone();
            let uploading = tokio::spawn({
                let u = upload(100 + round);
                async move { c.upload_document(&caller_c, u).await }
            });
            let deleting =
                tokio::spawn(async move { d.delete_document(&caller_d, &id_d).await });
            uploading.await.unwrap().unwrap();
            let _ = deleting.await.unwrap();
            let stored = verity.store().chunks_of(&id).await.unwrap().len();
            assert_eq!(count(&verity, "notes").await, stored, "round {round}");
        }
    });
}

/// A server with authentication off, as the first run has it.
fn open_server() -> (tokio::runtime::Runtime, String, TestApp) {
    let runtime = server_runtime();
    let app = runtime.block_on(async {
        let app = TestApp::builder()
            .settings(|s| s.auth.mode = AuthMode::Off)
            .open()
            .await;
        app.verity
            .store()
            .ensure_collection("default")
            .await
            .unwrap();
        app.serve().await
    });
    (runtime, app.base_url.clone(), app)
}

#[test]
fn with_authentication_off_other_web_pages_cannot_use_the_api() {
    let (runtime, base_url, _dir) = open_server();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let port = base_url.rsplit(':').next().unwrap().to_string();
        let upload = |origin: Option<&str>, site: Option<&str>, host: Option<String>| {
            let mut request = client
                .post(format!("{base_url}/v1/documents"))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(multipart(&[(
                    "file",
                    Some("planted.md"),
                    b"# Planted\n\nA page planted this note about the parking rules.",
                )]));
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = site {
                request = request.header("sec-fetch-site", site);
            }
            if let Some(host) = host {
                request = request.header("host", host);
            }
            send(request)
        };
        // DNS rebinding: the attacker's name, resolved to 127.0.0.1.
        let rebound = send(
            client
                .get(format!("{base_url}/v1/documents"))
                .header("host", format!("rebind.attacker.example:{port}")),
        )
        .await;
        assert_eq!(
            rebound.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{}",
            rebound.text
        );
        assert_eq!(rebound.body["error"]["code"], "host_not_allowed");
        // A cross-site form post.
        for (origin, site) in [
            (Some("https://evil.example"), Some("cross-site")),
            (Some("https://evil.example"), None),
            (None, Some("cross-site")),
            (Some("null"), None),
        ] {
            let reply = upload(origin, site, None).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{origin:?} {site:?}: {}",
                reply.text
            );
            assert_eq!(reply.body["error"]["code"], "cross_origin_refused");
        }
        // The first run is unchanged: curl, Verity's own page, localhost.
        let own = upload(Some(&base_url), Some("same-origin"), None).await;
        assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
        let curl = upload(None, None, Some(format!("localhost:{port}"))).await;
        assert_eq!(curl.status, StatusCode::OK, "{}", curl.text);
        let listed = send(client.get(format!("{base_url}/v1/documents"))).await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_eq!(listed.body["documents"].as_array().unwrap().len(), 1);
        let page = send(client.get(format!("{base_url}/"))).await;
        assert_eq!(page.status, StatusCode::OK);
    });
}

#[test]
fn refused_credentials_are_rate_limited_per_address() {
    let runtime = server_runtime();
    runtime.block_on(async {
        let app = TestApp::builder()
            .settings(|s| {
                s.auth.mode = AuthMode::Keys;
                s.auth.rate_limit_per_minute = 60;
                s.auth.rate_limit_burst = 3;
            })
            .serve()
            .await;
        let base_url = &app.base_url;
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for n in 0..6 {
            let reply = send(
                client
                    .get(format!("{base_url}/v1/collections"))
                    .bearer_auth(format!("vk_0123456789ab_{}", format!("{n:x}").repeat(64))),
            )
            .await;
            statuses.push(reply.status);
        }
        assert_eq!(
            &statuses[..3],
            [StatusCode::UNAUTHORIZED; 3],
            "{statuses:?}"
        );
        assert!(
            statuses[3..]
                .iter()
                .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        let reply = send(client.get(format!("{base_url}/v1/collections"))).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    });
}
