//! One contract, every backend: each test runs against SQLite (always) and against Postgres at
//! `DATABASE_URL` (in a database of its own, created and dropped by the test). `scripts/test.sh`
//! starts Postgres and sets `DATABASE_URL`, so CI runs both.

use std::future::Future;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AssertSqlSafe, Executor};
use verity_core::Chunk;
use verity_store::{Backend, DocumentRecord, Store};

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
