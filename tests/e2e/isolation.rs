//! The isolation matrix: every endpoint × operation (read, list, search, write, overwrite,
//! delete, trace, job, feedback) × caller kind (same group, other group, group-limited admin,
//! admin of every collection, query-only key, no key), on one collection split by groups and
//! across two collections, against a real server with API keys and its ingest worker.
//!
//! The cases are generated: loops over the kinds, the documents, the collections and the
//! operations, each expectation computed by a small oracle that states the README's rules
//! (`Oracle` below) independently of the server's code. Every document carries a canary word,
//! so a leak shows wherever it surfaces. The test counts leaks (a caller got or saw what it may
//! not), unauthorized writes (a write that should have been refused changed something) and
//! wrong refusals, and requires all three to be 0.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use verity_auth::{AuthMode, create_key};
use verity_core::{Scope, document_id};
use verity_service::Verity;
use verity_service::pipeline::IngestOptions;

use crate::helpers::{BOUNDARY, Reply, TestApp, multipart, send, server_runtime, write};

/// A document the operator ingested from under `ingest.allowed_root`.
struct Doc {
    collection: &'static str,
    /// Its path under the root.
    path: &'static str,
    groups: &'static [&'static str],
    /// A word only this document holds.
    canary: &'static str,
    text: &'static str,
}

static DOCS: [Doc; 6] = [
    Doc {
        collection: "handbook",
        path: "finance/salaries.md",
        groups: &["finance"],
        canary: "QUOKKA4821",
        text: "# Salaries\n\nThe chief financial officer earns a yearly salary recorded under the code QUOKKA4821 in the payroll ledger.\n",
    },
    Doc {
        collection: "handbook",
        path: "hr/leave.md",
        groups: &["hr"],
        canary: "PELICAN1193",
        text: "# Parental leave\n\nParents take sixteen weeks of paid leave; the HR form for parental leave is PELICAN1193.\n",
    },
    Doc {
        collection: "handbook",
        path: "pub/holidays.md",
        groups: &[],
        canary: "MARMOT7702",
        text: "# Public holidays\n\nThe office closes on national holidays; the holiday calendar code is MARMOT7702.\n",
    },
    Doc {
        collection: "handbook",
        path: "board/minutes.md",
        groups: &["hr", "finance"],
        canary: "OSPREY5510",
        text: "# Board minutes\n\nThe board approved the restructuring plan; the minutes are filed as OSPREY5510.\n",
    },
    Doc {
        collection: "payroll",
        path: "payroll/bonus.md",
        groups: &["finance"],
        canary: "WOMBAT3307",
        text: "# Bonus pool\n\nThe annual bonus pool for sales staff is booked under the code WOMBAT3307.\n",
    },
    Doc {
        collection: "payroll",
        path: "payroll/calendar.md",
        groups: &[],
        canary: "HERON6604",
        text: "# Payroll calendar\n\nSalaries are paid on the twenty-fifth of each month; the payroll calendar is HERON6604.\n",
    },
];

const COLLECTIONS: [&str; 2] = ["handbook", "payroll"];

/// A kind of caller, with what its key holds.
#[derive(Clone)]
struct Kind {
    name: &'static str,
    scopes: &'static [Scope],
    /// `None`: every collection.
    collections: Option<&'static [&'static str]>,
    groups: &'static [&'static str],
    /// `None`: no key at all.
    key: Option<String>,
}

const QI: &[Scope] = &[Scope::Query, Scope::Ingest];
const ALL: &[Scope] = &[Scope::Query, Scope::Ingest, Scope::Admin];

fn kinds() -> Vec<Kind> {
    let kind = |name, scopes, collections, groups| Kind {
        name,
        scopes,
        collections,
        groups,
        key: Some(String::new()),
    };
    vec![
        kind("same-group", QI, Some(&["handbook"][..]), &["hr"][..]),
        kind("other-group", QI, Some(&["handbook"][..]), &["finance"][..]),
        kind("group-admin", ALL, Some(&["handbook"][..]), &["hr"][..]),
        kind("admin", ALL, None, &[][..]),
        kind("reader", &[Scope::Query][..], None, &["hr"][..]),
        Kind {
            name: "no-key",
            scopes: &[],
            collections: None,
            groups: &[],
            key: None,
        },
    ]
}

/// The README's rules, stated once more for the test (not shared with the server's code).
struct Oracle;

impl Oracle {
    fn uses(kind: &Kind, collection: &str) -> bool {
        kind.key.is_some() && kind.collections.is_none_or(|c| c.contains(&collection))
    }

    fn reads(kind: &Kind, collection: &str, groups: &[&str]) -> bool {
        Self::uses(kind, collection)
            && kind.scopes.contains(&Scope::Query)
            && (groups.is_empty() || groups.iter().any(|g| kind.groups.contains(g)))
    }

    /// Writes into a group only as a member of every group of the document; public documents
    /// only with no groups at all.
    fn writes(kind: &Kind, collection: &str, groups: &[&str]) -> bool {
        Self::uses(kind, collection)
            && kind.scopes.contains(&Scope::Ingest)
            && if groups.is_empty() {
                kind.groups.is_empty()
            } else {
                groups.iter().all(|g| kind.groups.contains(g))
            }
    }

    fn admin_of(kind: &Kind, collection: &str) -> bool {
        Self::uses(kind, collection) && kind.scopes.contains(&Scope::Admin)
    }
}

/// What went wrong, by class; the test requires every class empty.
#[derive(Default)]
struct Findings {
    cells: usize,
    leaks: Vec<String>,
    unauthorized_writes: Vec<String>,
    wrong_refusals: Vec<String>,
}

impl Findings {
    fn leak(&mut self, what: String) {
        self.leaks.push(what);
    }

    /// One cell: `allowed` by the oracle, `got` the status.
    fn read(&mut self, what: &str, allowed: bool, reply: &Reply, canaries: &[&str]) {
        self.cells += 1;
        let leaked: Vec<&&str> = canaries
            .iter()
            .filter(|c| reply.text.contains(**c))
            .collect();
        if !leaked.is_empty() {
            self.leak(format!("{what}: {leaked:?} in {}", reply.text));
        }
        match (allowed, reply.status.is_success()) {
            (false, true) => self.leak(format!("{what}: {} {}", reply.status, reply.text)),
            (true, false) => self
                .wrong_refusals
                .push(format!("{what}: {} {}", reply.status, reply.text)),
            _ => {}
        }
    }

    fn write(&mut self, what: &str, allowed: bool, reply: &Reply) {
        self.cells += 1;
        match (allowed, reply.status.is_success()) {
            (false, true) => self
                .unauthorized_writes
                .push(format!("{what}: {} {}", reply.status, reply.text)),
            (true, false) => self
                .wrong_refusals
                .push(format!("{what}: {} {}", reply.status, reply.text)),
            _ => {}
        }
    }
}

struct Matrix {
    base_url: String,
    verity: Arc<Verity>,
    kinds: Vec<Kind>,
    root: PathBuf,
    client: reqwest::Client,
}

impl Matrix {
    async fn call(&self, kind: &Kind, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(key) = &kind.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    fn id(&self, doc: &Doc) -> String {
        document_id(doc.collection, &self.source(doc))
    }

    fn source(&self, doc: &Doc) -> String {
        self.root.join(doc.path).display().to_string()
    }

    /// The canaries of the documents `kind` may not read (in any collection).
    fn hidden_from(kind: &Kind) -> Vec<&'static str> {
        DOCS.iter()
            .filter(|d| !Oracle::reads(kind, d.collection, d.groups))
            .map(|d| d.canary)
            .collect()
    }

    /// The stored groups and content hash of every operator document: what no refused write
    /// may change.
    async fn snapshot(&self) -> BTreeMap<String, (Vec<String>, String)> {
        let mut out = BTreeMap::new();
        for doc in &DOCS {
            let id = self.id(doc);
            let state = self.verity.store().document_state(&id).await.unwrap();
            let info = self.verity.store().document(&id).await.unwrap();
            if let (Some(state), Some(info)) = (state, info) {
                out.insert(doc.path.to_string(), (info.groups, state.content_hash));
            }
        }
        out
    }
}

async fn start() -> (Matrix, TestApp) {
    let mut builder = TestApp::builder();
    let root = builder.path().canonicalize().unwrap().join("root");
    std::fs::create_dir_all(&root).unwrap();
    builder = builder.settings(|s| {
        s.auth.mode = AuthMode::Keys;
        s.auth.rate_limit_per_minute = 1_000_000;
        s.auth.rate_limit_burst = 100_000;
        s.ingest.allowed_root = Some(root.clone());
    });
    for doc in &DOCS {
        let path = write(&root, doc.path, doc.text);
        let groups = doc.groups.iter().map(|g| g.to_string()).collect();
        builder = builder.ingest(
            vec![path],
            IngestOptions::new(doc.collection).with_groups(groups),
        );
    }
    let app = builder.open().await;
    let verity = Arc::clone(&app.verity);
    let mut kinds = kinds();
    for kind in &mut kinds {
        if kind.key.is_some() {
            let collections: Option<Vec<String>> = kind
                .collections
                .map(|c| c.iter().map(|s| s.to_string()).collect());
            let groups: Vec<String> = kind.groups.iter().map(|s| s.to_string()).collect();
            let key = create_key(
                verity.store(),
                kind.name,
                kind.scopes,
                collections.as_deref(),
                &groups,
            )
            .await
            .unwrap();
            kind.key = Some(key.key);
        }
    }
    verity_service::worker::start_serve_worker(Arc::clone(&verity))
        .await
        .unwrap();
    let app = app.serve().await;
    let matrix = Matrix {
        base_url: app.base_url.clone(),
        verity,
        kinds,
        root,
        client: reqwest::Client::new(),
    };
    (matrix, app)
}

/// Reads, lists and collection counts.
async fn reads(m: &Matrix, findings: &mut Findings) {
    for kind in &m.kinds {
        let hidden = Matrix::hidden_from(kind);
        for doc in &DOCS {
            let allowed = Oracle::reads(kind, doc.collection, doc.groups);
            let reply = m
                .call(
                    kind,
                    Method::GET,
                    &format!("/v1/documents/{}", m.id(doc)),
                    None,
                )
                .await;
            findings.read(
                &format!("read {} by {}", doc.path, kind.name),
                allowed,
                &reply,
                &hidden,
            );
        }
        for collection in COLLECTIONS {
            let reply = m
                .call(
                    kind,
                    Method::GET,
                    &format!("/v1/documents?collection={collection}&limit=200"),
                    None,
                )
                .await;
            let what = format!("list {collection} by {}", kind.name);
            let usable = Oracle::uses(kind, collection) && kind.scopes.contains(&Scope::Query);
            findings.read(&what, usable, &reply, &hidden);
            if reply.status.is_success() {
                let listed: BTreeSet<String> = reply.body["documents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["source"].as_str().unwrap().to_string())
                    .collect();
                for doc in DOCS.iter().filter(|d| d.collection == collection) {
                    let expected = Oracle::reads(kind, collection, doc.groups);
                    if listed.contains(&m.source(doc)) && !expected {
                        findings.leak(format!("{what}: lists {}", doc.path));
                    }
                    if !listed.contains(&m.source(doc)) && expected {
                        findings
                            .wrong_refusals
                            .push(format!("{what}: misses {}", doc.path));
                    }
                }
            }
        }
        let reply = m.call(kind, Method::GET, "/v1/collections", None).await;
        findings.read(
            &format!("collections by {}", kind.name),
            kind.key.is_some(),
            &reply,
            &hidden,
        );
        if reply.status.is_success() {
            for entry in reply.body["collections"].as_array().unwrap() {
                let name = entry["name"].as_str().unwrap();
                let readable = DOCS
                    .iter()
                    .filter(|d| d.collection == name && Oracle::reads(kind, name, d.groups))
                    .count();
                if !Oracle::uses(kind, name) || entry["documents"].as_u64() > Some(readable as u64)
                {
                    findings.leak(format!("collections by {}: {entry}", kind.name));
                }
            }
        }
    }
}

/// An answer asked by a kind, with the documents its trace names.
struct Asked {
    asker: usize,
    collection: &'static str,
    id: String,
}

/// Every kind asks for every document's canary in every collection, through every answering
/// endpoint and mode; no answer may carry a canary it may not read.
async fn searches(m: &Matrix, findings: &mut Findings) -> Vec<Asked> {
    let mut asked = Vec::new();
    for (k, kind) in m.kinds.iter().enumerate() {
        let hidden = Matrix::hidden_from(kind);
        for collection in COLLECTIONS {
            let usable = Oracle::uses(kind, collection) && kind.scopes.contains(&Scope::Query);
            for doc in &DOCS {
                // The document's own sentence, word for word: the strongest probe.
                let question = doc.text.lines().last().unwrap().to_string();
                let what = |how: &str| {
                    format!(
                        "search {collection} for {} by {} ({how})",
                        doc.path, kind.name
                    )
                };
                for mode in ["dense", "sparse", "hybrid"] {
                    let reply = m
                        .call(
                            kind,
                            Method::POST,
                            "/v1/query",
                            Some(json!({"question": question, "collection": collection, "mode": mode, "top_k": 10})),
                        )
                        .await;
                    findings.read(&what(mode), usable, &reply, &hidden);
                    if mode == "hybrid" && reply.status.is_success() {
                        asked.push(Asked {
                            asker: k,
                            collection,
                            id: reply.body["id"].as_str().unwrap().to_string(),
                        });
                    }
                }
                let streamed = m
                    .call(
                        kind,
                        Method::POST,
                        "/v1/query",
                        Some(
                            json!({"question": question, "collection": collection, "stream": true}),
                        ),
                    )
                    .await;
                findings.read(&what("streamed"), usable, &streamed, &hidden);
                let chat = m
                    .call(
                        kind,
                        Method::POST,
                        "/v1/chat/completions",
                        Some(json!({"model": "verity", "collection": collection,
                            "messages": [{"role": "user", "content": question}]})),
                    )
                    .await;
                findings.read(&what("chat"), usable, &chat, &hidden);
                let generate = m
                    .call(
                        kind,
                        Method::POST,
                        "/generate",
                        Some(json!({"prompt": question, "collection": collection})),
                    )
                    .await;
                findings.read(&what("generate"), usable, &generate, &hidden);
            }
        }
    }
    asked
}

/// Every kind reads and rates every answer: only the asker, and admins of the collection who
/// may read every document the trace names.
async fn traces(m: &Matrix, findings: &mut Findings, asked: &[Asked]) {
    let unknown = "00000000-0000-4000-8000-000000000000";
    for answer in asked {
        let asker = &m.kinds[answer.asker];
        let own = m
            .call(
                asker,
                Method::GET,
                &format!("/v1/answers/{}", answer.id),
                None,
            )
            .await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.text);
        let named: Vec<&Doc> = own.body["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let id = c["document_id"].as_str().unwrap();
                DOCS.iter()
                    .find(|d| m.id(d) == id)
                    .expect("a known document")
            })
            .collect();
        for (r, reader) in m.kinds.iter().enumerate() {
            let allowed = r == answer.asker
                || (reader.scopes.contains(&Scope::Query)
                    && Oracle::admin_of(reader, answer.collection)
                    && !named.is_empty()
                    && named
                        .iter()
                        .all(|d| Oracle::reads(reader, d.collection, d.groups)));
            let hidden = if allowed {
                Vec::new()
            } else {
                DOCS.iter().map(|d| d.canary).collect()
            };
            let what = format!(
                "trace of {} in {} by {}",
                asker.name, answer.collection, reader.name
            );
            let reply = m
                .call(
                    reader,
                    Method::GET,
                    &format!("/v1/answers/{}", answer.id),
                    None,
                )
                .await;
            findings.read(&what, allowed, &reply, &hidden);
            if !allowed && reader.key.is_some() && reader.scopes.contains(&Scope::Query) {
                // Refused exactly like an unknown id.
                let missing = m
                    .call(reader, Method::GET, &format!("/v1/answers/{unknown}"), None)
                    .await;
                if reply.text.replace(&answer.id, "ID") != missing.text.replace(unknown, "ID") {
                    findings.leak(format!(
                        "{what}: told apart from an unknown id: {}",
                        reply.text
                    ));
                }
            }
            let rated = m
                .call(
                    reader,
                    Method::POST,
                    "/v1/feedback",
                    Some(json!({"answer_id": answer.id, "rating": "down"})),
                )
                .await;
            findings.write(
                &format!("feedback on {} by {}", asker.name, reader.name),
                r == answer.asker,
                &rated,
            );
        }
    }
}

/// The groups a new document gets when `asked` (the collections have no default groups).
fn resulting_groups<'a>(kind: &'a Kind, asked: Option<&'a [&'a str]>) -> &'a [&'a str] {
    asked.unwrap_or(kind.groups)
}

const GROUP_CHOICES: [Option<&[&str]>; 5] = [
    None,
    Some(&[]),
    Some(&["hr"]),
    Some(&["finance"]),
    Some(&["hr", "finance"]),
];

/// New documents through both upload endpoints, and re-ingests of every operator document
/// through a path job, each with every choice of groups.
async fn writes(m: &Matrix, findings: &mut Findings) -> Vec<(usize, i64)> {
    let mut jobs = Vec::new();
    for (k, kind) in m.kinds.iter().enumerate() {
        for collection in COLLECTIONS {
            for (n, asked) in GROUP_CHOICES.iter().enumerate() {
                let groups = resulting_groups(kind, *asked);
                let allowed = Oracle::writes(kind, collection, groups);
                let mut body = json!({
                    "name": format!("note-{}-{n}.md", kind.name),
                    "text": format!("# Note\n\nA note written by {} about the canteen menu number {n}.", kind.name),
                    "collection": collection,
                });
                if let Some(asked) = asked {
                    body["groups"] = json!(asked);
                }
                let reply = m
                    .call(kind, Method::POST, "/v1/documents", Some(body))
                    .await;
                findings.write(
                    &format!("upload to {collection} with {asked:?} by {}", kind.name),
                    allowed,
                    &reply,
                );
                // The same through a job of uploaded files.
                let mut parts: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
                    ("collection", None, collection.as_bytes().to_vec()),
                    (
                        "file",
                        Some("job-note.md"),
                        format!("# Job note\n\nA job note by {} number {n}.", kind.name)
                            .into_bytes(),
                    ),
                ];
                if let Some(asked) = asked {
                    parts.push(("groups", None, asked.join(",").into_bytes()));
                }
                let parts: Vec<(&str, Option<&str>, &[u8])> = parts
                    .iter()
                    .map(|(a, b, c)| (*a, *b, c.as_slice()))
                    .collect();
                let mut request = m
                    .client
                    .post(format!("{}/v1/ingest/jobs", m.base_url))
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(multipart(&parts));
                if let Some(key) = &kind.key {
                    request = request.bearer_auth(key);
                }
                let reply = send(request).await;
                findings.write(
                    &format!("upload job to {collection} with {asked:?} by {}", kind.name),
                    allowed,
                    &reply,
                );
                if reply.status.is_success() {
                    jobs.push((k, reply.body["id"].as_i64().unwrap()));
                }
            }
        }
        // Re-ingesting the operator's documents through server-side paths: allowed only over
        // documents the kind may write, and only with groups it may give.
        for doc in &DOCS {
            for asked in GROUP_CHOICES {
                let groups = resulting_groups(kind, asked);
                let allowed = Oracle::writes(kind, doc.collection, groups)
                    && Oracle::writes(kind, doc.collection, doc.groups);
                let mut body = json!({"paths": [doc.path], "collection": doc.collection});
                if let Some(asked) = asked {
                    body["groups"] = json!(asked);
                }
                let reply = m
                    .call(kind, Method::POST, "/v1/ingest/jobs", Some(body))
                    .await;
                findings.write(
                    &format!("path job over {} with {asked:?} by {}", doc.path, kind.name),
                    allowed,
                    &reply,
                );
                if reply.status.is_success() {
                    jobs.push((k, reply.body["id"].as_i64().unwrap()));
                }
            }
        }
    }
    jobs
}

/// Every kind reads and cancels every job: its creator, and admins of the collection who may
/// read (cancel: write) the documents it writes.
async fn job_access(m: &Matrix, findings: &mut Findings, jobs: &[(usize, i64)]) {
    for &(creator, id) in jobs {
        let owner = &m.kinds[creator];
        let job = m
            .call(owner, Method::GET, &format!("/v1/ingest/jobs/{id}"), None)
            .await;
        assert_eq!(job.status, StatusCode::OK, "{}", job.text);
        let collection = job.body["collection"].as_str().unwrap().to_string();
        let stored = m.verity.store().job(id).await.unwrap().unwrap();
        let options: Value = serde_json::from_str(&stored.options).unwrap();
        let groups: Vec<String> = serde_json::from_value(options["groups"].clone()).unwrap();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        for (r, reader) in m.kinds.iter().enumerate() {
            let ingest = reader.scopes.contains(&Scope::Ingest);
            let admin = Oracle::admin_of(reader, &collection) && ingest;
            let readable = r == creator
                || (admin
                    && (groups.is_empty() || groups.iter().any(|g| reader.groups.contains(g))));
            let what = format!("job {id} of {} read by {}", owner.name, reader.name);
            let reply = m
                .call(reader, Method::GET, &format!("/v1/ingest/jobs/{id}"), None)
                .await;
            findings.read(&what, readable, &reply, &[]);
            // Cancelling by anyone but the creator is probed; the creator's own cancel would
            // stop the job before the writes are checked.
            if r != creator {
                let cancellable = admin && Oracle::writes(reader, &collection, &groups);
                let reply = m
                    .call(
                        reader,
                        Method::DELETE,
                        &format!("/v1/ingest/jobs/{id}"),
                        None,
                    )
                    .await;
                findings.write(
                    &format!("job {id} of {} cancelled by {}", owner.name, reader.name),
                    cancellable,
                    &reply,
                );
            }
        }
    }
}

async fn wait_for_jobs(m: &Matrix, jobs: &[(usize, i64)]) {
    let deadline = Instant::now() + Duration::from_secs(300);
    for &(creator, id) in jobs {
        loop {
            let reply = m
                .call(
                    &m.kinds[creator],
                    Method::GET,
                    &format!("/v1/ingest/jobs/{id}"),
                    None,
                )
                .await;
            let state = reply.body["state"].as_str().unwrap_or_default().to_string();
            if state == "done" || state == "cancelled" {
                break;
            }
            assert!(Instant::now() < deadline, "job {id}: {}", reply.text);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Deletes of every operator document by every kind: refusals first (404 when the kind may not
/// read it, 403 when it reads but may not write it), then the allowed ones.
async fn deletes(m: &Matrix, findings: &mut Findings) {
    let mut allowed_deletes = Vec::new();
    for kind in &m.kinds {
        for doc in &DOCS {
            if Oracle::writes(kind, doc.collection, doc.groups) {
                allowed_deletes.push((kind, doc));
                continue;
            }
            let reply = m
                .call(
                    kind,
                    Method::DELETE,
                    &format!("/v1/documents/{}", m.id(doc)),
                    None,
                )
                .await;
            findings.write(
                &format!("delete {} by {}", doc.path, kind.name),
                false,
                &reply,
            );
            let expected = if kind.key.is_none() {
                StatusCode::UNAUTHORIZED
            } else if !kind.scopes.contains(&Scope::Ingest)
                || Oracle::reads(kind, doc.collection, doc.groups)
            {
                // No ingest scope, or a document it reads but may not write.
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            if reply.status != expected {
                findings.wrong_refusals.push(format!(
                    "delete {} by {}: {} (expected {expected})",
                    doc.path, kind.name, reply.status
                ));
            }
        }
        for collection in COLLECTIONS {
            let holds_unwritable = DOCS
                .iter()
                .any(|d| d.collection == collection && !Oracle::writes(kind, collection, d.groups));
            let reply = m
                .call(
                    kind,
                    Method::DELETE,
                    &format!("/v1/collections/{collection}"),
                    None,
                )
                .await;
            findings.write(
                &format!("delete collection {collection} by {}", kind.name),
                Oracle::admin_of(kind, collection) && !holds_unwritable,
                &reply,
            );
        }
    }
    let mut deleted = BTreeSet::new();
    for (kind, doc) in allowed_deletes {
        if !deleted.insert(doc.path) {
            continue;
        }
        let reply = m
            .call(
                kind,
                Method::DELETE,
                &format!("/v1/documents/{}", m.id(doc)),
                None,
            )
            .await;
        findings.write(
            &format!("delete {} by {}", doc.path, kind.name),
            true,
            &reply,
        );
    }
}

#[test]
fn the_isolation_matrix_has_no_leak_and_no_unauthorized_write() {
    let runtime = server_runtime();
    runtime.block_on(async {
        let (m, _dir) = start().await;
        let mut findings = Findings::default();
        let before = m.snapshot().await;
        assert_eq!(before.len(), DOCS.len());

        reads(&m, &mut findings).await;
        let asked = searches(&m, &mut findings).await;
        traces(&m, &mut findings, &asked).await;
        let jobs = writes(&m, &mut findings).await;
        job_access(&m, &mut findings, &jobs).await;
        wait_for_jobs(&m, &jobs).await;
        // No refused write changed an operator document (the allowed re-ingests kept the same
        // bytes and groups, so nothing changed at all).
        let after = m.snapshot().await;
        if after != before {
            findings.unauthorized_writes.push(format!(
                "operator documents changed: {before:?} -> {after:?}"
            ));
        }
        // Every uploaded document is one some kind was allowed to write there.
        for collection in COLLECTIONS {
            for document in m
                .verity
                .store()
                .documents_in_collection(collection)
                .await
                .unwrap()
            {
                let groups: Vec<&str> = document.groups.iter().map(String::as_str).collect();
                if document.source.starts_with("upload:")
                    && !m
                        .kinds
                        .iter()
                        .any(|k| Oracle::writes(k, collection, &groups))
                {
                    findings.unauthorized_writes.push(format!(
                        "{collection}: {} with {groups:?} stored, which no kind may write",
                        document.source
                    ));
                }
            }
        }
        deletes(&m, &mut findings).await;

        eprintln!(
            "isolation matrix: {} cells, {} leaks, {} unauthorized writes, {} wrong refusals",
            findings.cells,
            findings.leaks.len(),
            findings.unauthorized_writes.len(),
            findings.wrong_refusals.len()
        );
        assert!(findings.cells > 1_000, "{} cells", findings.cells);
        assert!(findings.leaks.is_empty(), "leaks: {:#?}", findings.leaks);
        assert!(
            findings.unauthorized_writes.is_empty(),
            "unauthorized writes: {:#?}",
            findings.unauthorized_writes
        );
        assert!(
            findings.wrong_refusals.is_empty(),
            "wrong refusals: {:#?}",
            findings.wrong_refusals
        );
    });
}

/// Checks the test's oracle matches the README's examples, so the matrix tests the rules it
/// claims to.
#[test]
fn the_oracle_states_the_readme_rules() {
    let kinds = kinds();
    let same = &kinds[0];
    assert!(Oracle::reads(same, "handbook", &["hr"]));
    assert!(Oracle::reads(same, "handbook", &[]));
    assert!(!Oracle::reads(same, "handbook", &["finance"]));
    assert!(!Oracle::reads(same, "payroll", &[]));
    assert!(Oracle::writes(same, "handbook", &["hr"]));
    assert!(!Oracle::writes(same, "handbook", &[]));
    assert!(!Oracle::writes(same, "handbook", &["hr", "finance"]));
}
