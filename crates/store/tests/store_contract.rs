//! One contract, every backend: each test runs against SQLite (always) and against Postgres at
//! `DATABASE_URL` (in a database of its own, created and dropped by the test). `scripts/test.sh`
//! starts Postgres and sets `DATABASE_URL`, so CI runs both.

use std::future::Future;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AssertSqlSafe, Executor};
use verity_core::{
    Answer, AnswerTrace, Chunk, Citation, Grounding, GroundingStatus, Timings, TraceCandidate,
    UnsupportedSentence,
};
use verity_store::{Backend, DocumentRecord, JobCreated, NewJob, NewJobFile, Store};

fn record(id: &str, collection: &str, hash: &str) -> DocumentRecord {
    DocumentRecord {
        id: id.into(),
        collection: collection.into(),
        source: format!("/kb/{id}.md"),
        title: "Title".into(),
        format: "markdown".into(),
        content_hash: hash.into(),
        pipeline: "p1".into(),
        text: "Hello world. Bye.".into(),
        language: "es".into(),
        tags: vec!["hr".into(), "chile".into()],
        groups: vec!["hr-team".into()],
        modified: Some(1_700_000_000),
    }
}

fn chunk(document_id: &str, ordinal: u32, text: &str) -> Chunk {
    Chunk {
        id: format!("{document_id}-{ordinal}-{text}"),
        document_id: document_id.into(),
        ordinal,
        start: 7 * ordinal as usize,
        end: 7 * ordinal as usize + text.chars().count(),
        text: text.into(),
        heading_path: vec!["Título".into(), "Sección".into()],
        token_count: 3,
        page: None,
    }
}

/// Runs `test` on a fresh SQLite store.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db").join("verity.sqlite3"))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    test(store).await;
}

/// Runs `test` on a fresh Postgres database, or says why it cannot.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "postgres contract test not run: DATABASE_URL is not set (scripts/test.sh sets it)"
        );
        return;
    };
    install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let name = format!("verity_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let base = &admin_url[..admin_url.rfind('/').unwrap()];
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    test(store.clone()).await;
    store.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&admin)
        .await
        .unwrap();
}

/// Declares one contract test as a module with a `sqlite` and a `postgres` case.
macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                on_sqlite($body).await;
            }

            #[tokio::test]
            async fn postgres() {
                on_postgres($body).await;
            }
        }
    };
}

contract!(
    a_written_document_is_indexing_until_marked_active,
    |store: Store| async move {
        store.ensure_collection("kb").await.unwrap();
        store.ensure_collection("kb").await.unwrap();
        assert!(store.collection_exists("kb").await.unwrap());
        assert!(!store.collection_exists("other").await.unwrap());

        let previous = store
            .write_document(&record("d1", "kb", "h1"), &[chunk("d1", 0, "Hello world.")])
            .await
            .unwrap();
        assert!(previous.is_empty());
        let state = store.document_state("d1").await.unwrap().unwrap();
        assert!(!state.active);
        assert_eq!(
            (
                state.content_hash.as_str(),
                state.pipeline.as_str(),
                state.version
            ),
            ("h1", "p1", 1)
        );

        store.mark_active("d1").await.unwrap();
        assert!(store.document_state("d1").await.unwrap().unwrap().active);
        assert_eq!(
            store.document_text("d1").await.unwrap().as_deref(),
            Some("Hello world. Bye.")
        );
    }
);

contract!(
    rewriting_a_document_replaces_its_chunks_and_bumps_its_version,
    |store: Store| async move {
        store.ensure_collection("kb").await.unwrap();
        store
            .write_document(
                &record("d1", "kb", "h1"),
                &[chunk("d1", 0, "old a"), chunk("d1", 1, "old b")],
            )
            .await
            .unwrap();
        store.mark_active("d1").await.unwrap();

        let mut previous = store
            .write_document(&record("d1", "kb", "h2"), &[chunk("d1", 0, "new")])
            .await
            .unwrap();
        previous.sort();
        assert_eq!(previous, ["d1-0-old a", "d1-1-old b"]);
        assert_eq!(
            store.chunks_of("d1").await.unwrap(),
            [chunk("d1", 0, "new")]
        );
        let state = store.document_state("d1").await.unwrap().unwrap();
        assert_eq!(
            (state.version, state.active, state.content_hash.as_str()),
            (2, false, "h2")
        );
    }
);

contract!(
    chunks_come_back_in_order_with_unicode_and_pages_intact,
    |store: Store| async move {
        store.ensure_collection("kb").await.unwrap();
        let mut chunks = [
            chunk("d1", 0, "Vacación"),
            chunk("d1", 1, "São Paulo 🙂"),
            chunk("d1", 2, "end"),
        ];
        // Chunks of paged formats keep their page; the others have none.
        chunks[1].page = Some(2);
        chunks[2].page = Some(7);
        store
            .write_document(&record("d1", "kb", "h"), &chunks)
            .await
            .unwrap();
        assert_eq!(store.chunks_of("d1").await.unwrap(), chunks);
    }
);

contract!(
    deleting_a_collection_deletes_its_documents_and_chunks,
    |store: Store| async move {
        for collection in ["a", "b"] {
            store.ensure_collection(collection).await.unwrap();
        }
        store
            .write_document(&record("d1", "a", "h"), &[chunk("d1", 0, "x")])
            .await
            .unwrap();
        store
            .write_document(&record("d2", "b", "h"), &[chunk("d2", 0, "y")])
            .await
            .unwrap();

        store.delete_collection("a").await.unwrap();
        assert!(store.document_state("d1").await.unwrap().is_none());
        assert!(store.chunks_of("d1").await.unwrap().is_empty());
        let remaining = store.documents_in_collection("b").await.unwrap();
        assert_eq!(remaining.len(), 1);
        assert_eq!(
            (remaining[0].id.as_str(), remaining[0].source.as_str()),
            ("d2", "/kb/d2.md")
        );
        assert_eq!(remaining[0].tags, ["hr", "chile"]);
        assert_eq!(remaining[0].groups, ["hr-team"]);
        assert_eq!(store.list_collections().await.unwrap(), ["b"]);
    }
);

contract!(
    deleting_a_document_deletes_its_chunks_only,
    |store: Store| async move {
        store.ensure_collection("kb").await.unwrap();
        store
            .write_document(&record("d1", "kb", "h"), &[chunk("d1", 0, "x")])
            .await
            .unwrap();
        store
            .write_document(&record("d2", "kb", "h"), &[chunk("d2", 0, "y")])
            .await
            .unwrap();
        store.delete_document("d1").await.unwrap();
        assert!(store.chunks_of("d1").await.unwrap().is_empty());
        assert_eq!(store.chunks_of("d2").await.unwrap().len(), 1);
    }
);

/// The trace of an answer that cited `cited` and was also given `given`.
fn trace_citing(id: &str, cited: &str, given: &str) -> AnswerTrace {
    let candidate = |rank: u32, document: &str| TraceCandidate {
        rank,
        document_id: document.into(),
        chunk_id: format!("{document}-0-x"),
        title: format!("Title of {document}"),
        score: 0.5,
        similarity: 0.9,
    };
    AnswerTrace {
        id: id.into(),
        caller: "key:abc".into(),
        collection: "kb".into(),
        question: "What is the CFO salary?".into(),
        mode: verity_core::RetrievalMode::Hybrid,
        candidates: vec![candidate(1, cited), candidate(2, given)],
        prompt_hash: None,
        generator: "extractive".into(),
        answer: Answer {
            id: id.into(),
            answer: "The CFO earns 250,000 a year [1].".into(),
            citations: vec![Citation {
                id: 1,
                document_id: cited.into(),
                title: format!("Title of {cited}"),
                source: format!("/kb/{cited}.md"),
                chunk_id: format!("{cited}-0-x"),
                start: 0,
                end: 30,
                text: "The CFO earns 250,000 a year.".into(),
                score: 0.5,
                similarity: 0.9,
                heading_path: Vec::new(),
                page: None,
            }],
            grounding: Grounding {
                status: GroundingStatus::Partial,
                unsupported: vec![UnsupportedSentence {
                    sentence: "The CEO earns more.".into(),
                    citations: vec![],
                    reason: "cites no source".into(),
                }],
                ..Grounding::default()
            },
            generator: "extractive".into(),
            prompt_hash: None,
        },
        timings: Timings::default(),
        feedback: None,
        created_at: 1_700_000_000,
        redacted_at: None,
    }
}

contract!(
    deleting_a_document_withdraws_its_text_from_the_traces_that_drew_on_it,
    |store: Store| async move {
        for collection in ["kb", "other"] {
            store.ensure_collection(collection).await.unwrap();
        }
        for (id, collection) in [("salaries", "kb"), ("leave", "kb"), ("faq", "other")] {
            store
                .write_document(&record(id, collection, "h"), &[chunk(id, 0, "x")])
                .await
                .unwrap();
        }
        let cited_salaries = trace_citing("t1", "salaries", "leave");
        let cited_leave = trace_citing("t2", "leave", "faq");
        let unrelated = trace_citing("t3", "faq", "faq");
        for trace in [&cited_salaries, &cited_leave, &unrelated] {
            store.insert_trace(trace).await.unwrap();
        }
        assert_eq!(store.trace("t1").await.unwrap().unwrap(), cited_salaries);

        store.delete_document("salaries").await.unwrap();
        let withdrawn = store.trace("t1").await.unwrap().unwrap();
        assert!(withdrawn.redacted_at.is_some());
        let kept = serde_json::to_string(&withdrawn).unwrap();
        for text in ["250,000", "CEO earns", "Title of salaries"] {
            assert!(!kept.contains(text), "{text} kept in {kept}");
        }
        // The question, the ids and the scores stay; so does what the other source holds.
        assert_eq!(withdrawn.question, cited_salaries.question);
        assert_eq!(withdrawn.candidates[0].document_id, "salaries");
        assert_eq!(withdrawn.candidates[1].title, "Title of leave");
        // Traces that did not draw on it are untouched.
        assert_eq!(store.trace("t2").await.unwrap().unwrap(), cited_leave);
        assert_eq!(store.trace("t3").await.unwrap().unwrap(), unrelated);

        // Deleting a collection withdraws every document of it, and only those.
        store.delete_collection("kb").await.unwrap();
        let t2 = store.trace("t2").await.unwrap().unwrap();
        assert!(t2.redacted_at.is_some() && t2.answer.answer.is_empty());
        assert_eq!(t2.candidates[1].title, "Title of faq");
        assert_eq!(store.trace("t3").await.unwrap().unwrap(), unrelated);

        // A trace written after its source was deleted (the deletion ran while the answer was
        // being written) is withdrawn as it is kept.
        store
            .insert_trace(&trace_citing("t4", "salaries", "faq"))
            .await
            .unwrap();
        let late = store.trace("t4").await.unwrap().unwrap();
        assert!(late.redacted_at.is_some() && late.answer.citations.is_empty());
    }
);

contract!(
    a_document_in_an_unknown_collection_is_refused_and_nothing_is_written,
    |store: Store| async move {
        assert!(
            store
                .write_document(&record("d1", "missing", "h"), &[chunk("d1", 0, "x")])
                .await
                .is_err()
        );
        assert!(store.document_state("d1").await.unwrap().is_none());
        assert!(store.chunks_of("d1").await.unwrap().is_empty());
    }
);

contract!(
    a_documents_write_lease_has_one_holder_until_released_or_run_out,
    |store: Store| async move {
        let in_a_minute = now_ms() + 60_000;
        assert!(
            store
                .try_lease_document("d1", "server-a", in_a_minute)
                .await
                .unwrap()
        );
        // Another process waits; another document is free; the holder renews.
        assert!(
            !store
                .try_lease_document("d1", "worker-b", in_a_minute)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_document("d2", "worker-b", in_a_minute)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_document("d1", "server-a", in_a_minute + 1)
                .await
                .unwrap()
        );
        // Released: the next one takes it; only the holder releases.
        store
            .release_document_lease("d1", "worker-b")
            .await
            .unwrap();
        assert!(
            !store
                .try_lease_document("d1", "worker-b", in_a_minute)
                .await
                .unwrap()
        );
        store
            .release_document_lease("d1", "server-a")
            .await
            .unwrap();
        assert!(
            store
                .try_lease_document("d1", "worker-b", in_a_minute)
                .await
                .unwrap()
        );
        // A holder that died: its lease runs out and is taken over.
        assert!(
            store
                .try_lease_document("d3", "dead", now_ms() - 1)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_document("d3", "worker-b", in_a_minute)
                .await
                .unwrap()
        );
    }
);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

contract!(the_store_answers_a_ping, |store: Store| async move {
    store.ping().await.unwrap();
});

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error_naming_it_without_the_password() {
    let err = Store::connect("postgres://verity:s3cret@127.0.0.1:1/verity")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("postgres://verity:***@127.0.0.1:1/verity"),
        "{message}"
    );
    assert!(!message.contains("s3cret"));
}

#[tokio::test]
async fn an_unknown_database_url_scheme_is_refused() {
    let err = Store::connect("mysql://localhost/verity")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("neither sqlite"), "{err}");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_verity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verity.sqlite3");
    let store = Store::open_sqlite(&path).await.unwrap();
    store.close().await;
    // Pretend a newer binary applied migration 9999.
    install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    pool.execute(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (9999, 'future', '2030-01-01', 1, x'00', 0)",
    )
    .await
    .unwrap();
    pool.close().await;
    let err = Store::open_sqlite(&path).await.unwrap_err();
    assert!(err.to_string().contains("newer Verity"), "{err}");
}

contract!(
    queued_files_are_claimed_once_and_taken_again_when_a_lease_expires,
    |store: Store| async move {
        let job = store
            .create_job(
                "kb",
                "{}",
                &["/a.md".into(), "/b.md".into(), "/c.md".into()],
            )
            .await
            .unwrap();
        let mut claimed = Vec::new();
        for worker in ["w1", "w2", "w3"] {
            let file = store
                .claim_file(worker, 60, 3)
                .await
                .unwrap()
                .expect("a file to claim");
            assert_eq!(
                (file.job_id, file.collection.as_str(), file.attempts),
                (job, "kb", 1)
            );
            claimed.push(file.path);
        }
        claimed.sort();
        assert_eq!(
            claimed,
            ["/a.md", "/b.md", "/c.md"],
            "each file claimed by exactly one worker"
        );
        assert!(store.claim_file("w4", 60, 3).await.unwrap().is_none());

        // An expired lease (lease of -1 s: already over) lets another worker take the file again.
        let job2 = store
            .create_job("kb", "{}", &["/d.md".into()])
            .await
            .unwrap();
        let first = store.claim_file("dies", -1, 2).await.unwrap().unwrap();
        let again = store.claim_file("heir", 60, 2).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (first.id, 2));
        store
            .finish_file(again.id, "heir", false, "added")
            .await
            .unwrap();
        // A late finish by the worker that lost the lease changes nothing.
        store
            .finish_file(first.id, "dies", true, "too late")
            .await
            .unwrap();
        let progress = store.job_progress(job2).await.unwrap();
        assert_eq!((progress.done, progress.failed), (1, 0));
    }
);

contract!(
    a_file_that_keeps_killing_its_workers_ends_failed,
    |store: Store| async move {
        let job = store
            .create_job("kb", "{}", &["/bomb.md".into()])
            .await
            .unwrap();
        store.claim_file("w1", -1, 2).await.unwrap().unwrap();
        store.claim_file("w2", -1, 2).await.unwrap().unwrap();
        assert!(
            store.claim_file("w3", 60, 2).await.unwrap().is_none(),
            "attempts are used up"
        );
        assert_eq!(store.fail_exhausted_files(2).await.unwrap(), 1);
        assert_eq!(store.job_progress(job).await.unwrap().failed, 1);
    }
);

fn upload_file(n: usize) -> NewJobFile {
    NewJobFile {
        path: format!("/uploads/job/{n:05}"),
        source: Some(format!("upload:/team-a/f{n}.md")),
        name: Some(format!("f{n}.md")),
    }
}

contract!(
    an_api_job_keeps_its_caller_key_and_per_file_states_and_cancels_its_queued_files,
    |store: Store| async move {
        let job = NewJob {
            collection: "kb",
            options: "{}",
            caller: "key:a",
            idempotency_key: Some("retry-1"),
            request_hash: Some("h1"),
            claimed_by: None,
        };
        let JobCreated::New(id) = store
            .create_job_with(&job, |_| Ok((0..3).map(upload_file).collect()))
            .await
            .unwrap()
        else {
            panic!("a new job")
        };
        // The same caller and key: the same job, files not asked for again.
        let again = store
            .create_job_with(&job, |_| panic!("no files for an existing job"))
            .await
            .unwrap();
        assert_eq!(
            again,
            JobCreated::Existing {
                id,
                request_hash: Some("h1".into())
            }
        );
        // Another caller's key is its own.
        let other = NewJob {
            caller: "key:b",
            ..job.clone()
        };
        let JobCreated::New(other_id) = store
            .create_job_with(&other, |_| Ok(vec![NewJobFile::path("/b.md")]))
            .await
            .unwrap()
        else {
            panic!("another caller's job is new")
        };
        assert_ne!(other_id, id);
        // Files that cannot be given: no job at all.
        let failing = NewJob {
            idempotency_key: Some("retry-2"),
            ..job.clone()
        };
        let error = store
            .create_job_with(&failing, |_| {
                Err(verity_core::VerityError::internal("test", "disk full"))
            })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("disk full"));
        let JobCreated::New(after) = store
            .create_job_with(&failing, |_| Ok(vec![NewJobFile::path("/c.md")]))
            .await
            .unwrap()
        else {
            panic!("the key was not taken by the failed attempt")
        };

        let record = store.job(id).await.unwrap().unwrap();
        assert_eq!(
            (
                record.collection.as_str(),
                record.caller.as_str(),
                record.cancelled_at
            ),
            ("kb", "key:a", None)
        );
        assert!(record.created_at > 1_700_000_000);
        assert!(store.job(after + 1000).await.unwrap().is_none());

        let claimed = store.claim_file("w1", 60, 3).await.unwrap().unwrap();
        assert_eq!(claimed.job_id, id);
        assert_eq!(claimed.source.as_deref(), Some("upload:/team-a/f0.md"));
        assert_eq!(claimed.name.as_deref(), Some("f0.md"));
        let files = store.job_file_records(id).await.unwrap();
        assert_eq!(
            (files[0].state.as_str(), files[0].stage.as_deref()),
            ("running", Some("parsing"))
        );
        store
            .set_file_stage(claimed.id, verity_core::FileState::Embedding)
            .await
            .unwrap();
        assert_eq!(
            store.job_file_records(id).await.unwrap()[0]
                .stage
                .as_deref(),
            Some("embedding")
        );

        // Cancel: the queued files are cancelled, the running one goes on and finishes.
        let cancelled = store.cancel_job(id).await.unwrap();
        assert_eq!(
            cancelled
                .iter()
                .map(|f| f.name.clone().unwrap())
                .collect::<Vec<_>>(),
            ["f1.md", "f2.md"]
        );
        assert!(store.job(id).await.unwrap().unwrap().cancelled_at.is_some());
        assert!(
            store.cancel_job(id).await.unwrap().is_empty(),
            "cancelling twice changes nothing"
        );
        store
            .finish_file(claimed.id, "w1", false, "added")
            .await
            .unwrap();
        // A stage set after the end changes nothing.
        store
            .set_file_stage(claimed.id, verity_core::FileState::Embedding)
            .await
            .unwrap();
        let files = store.job_file_records(id).await.unwrap();
        let states: Vec<_> = files
            .iter()
            .map(|f| (f.state.as_str(), f.stage.as_deref(), f.outcome.as_deref()))
            .collect();
        assert_eq!(
            states,
            [
                ("done", None, Some("added")),
                ("cancelled", None, None),
                ("cancelled", None, None)
            ]
        );
        let progress = store.job_progress(id).await.unwrap();
        assert_eq!(
            (progress.done, progress.cancelled, progress.queued),
            (1, 2, 0)
        );
        // Cancelled files are never claimed: the next file is the other caller's.
        let next = store.claim_file("w1", 60, 3).await.unwrap().unwrap();
        assert_eq!(next.job_id, other_id);
    }
);

contract!(
    a_batch_owns_its_files_and_a_restart_requeues_running_files_until_their_attempts_run_out,
    |store: Store| async move {
        let batch = NewJob {
            collection: "kb",
            options: "{}",
            caller: "local",
            claimed_by: Some(("ingest-1", 3_600)),
            ..NewJob::default()
        };
        let JobCreated::New(id) = store
            .create_job_with(&batch, |_| {
                Ok(["/a.md", "/b.md", "/c.md"]
                    .into_iter()
                    .map(NewJobFile::path)
                    .collect())
            })
            .await
            .unwrap()
        else {
            panic!("a new job")
        };
        let files = store.job_file_records(id).await.unwrap();
        assert!(files.iter().all(|f| f.state == "running"
            && f.attempts == 1
            && f.worker.as_deref() == Some("ingest-1")));
        assert!(
            store.claim_file("w", 60, 3).await.unwrap().is_none(),
            "a batch's own files are leased to it"
        );
        store
            .finish_files(
                "ingest-1",
                &[
                    (files[0].id, false, "added".into()),
                    (files[1].id, true, "empty file".into()),
                ],
            )
            .await
            .unwrap();
        // Another worker's finish is ignored.
        store
            .finish_files("intruder", &[(files[2].id, false, "added".into())])
            .await
            .unwrap();
        // The batch dies with /c.md running; /d.md is claimed by a worker that dies too.
        let job2 = store
            .create_job("kb", "{}", &["/d.md".into()])
            .await
            .unwrap();
        store.claim_file("w1", 600, 2).await.unwrap().unwrap();
        assert_eq!(store.requeue_running_files(2).await.unwrap(), (2, 0));
        // /c.md (first in line) is claimed again and its worker dies again: attempts used up.
        let c = store.claim_file("w2", 600, 2).await.unwrap().unwrap();
        assert_eq!((c.path.as_str(), c.attempts), ("/c.md", 2));
        assert_eq!(store.requeue_running_files(2).await.unwrap(), (0, 1));
        let states: Vec<_> = store
            .job_file_records(id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.state, f.outcome))
            .collect();
        assert_eq!(
            states,
            [
                (
                    "/a.md".to_string(),
                    "done".to_string(),
                    Some("added".to_string())
                ),
                ("/b.md".into(), "failed".into(), Some("empty file".into())),
                (
                    "/c.md".into(),
                    "failed".into(),
                    Some("gave up after repeated crashes".into())
                ),
            ]
        );
        let d = &store.job_file_records(job2).await.unwrap()[0];
        assert_eq!((d.state.as_str(), d.attempts), ("queued", 1));
        let again = store.claim_file("w3", 600, 2).await.unwrap().unwrap();
        assert_eq!((again.path.as_str(), again.attempts), ("/d.md", 2));
    }
);
