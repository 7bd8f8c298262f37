//! The same service on Postgres: the metadata store chosen by `database.url`, the vector index
//! still the embedded Qdrant Edge shard. Runs when `DATABASE_URL` names a Postgres server
//! (scripts/test.sh sets it), in a database of its own.

use std::fs;

use verity_core::{AnswerService, Caller, GroundingStatus, QueryRequest};
use verity_service::pipeline::{IngestOptions, Quiet};
use verity_store::Backend;

use crate::helpers::{TestApp, TestDatabase, settings_for};
use verity_service::pipeline::IngestInput;

#[tokio::test]
async fn ingest_and_answer_with_the_metadata_in_postgres() {
    let Some(database) = TestDatabase::create("postgres end-to-end test").await else {
        return;
    };
    let builder = TestApp::builder();
    let docs = builder.docs();
    fs::write(
        docs.join("wifi.md"),
        "# Wifi\n\nThe guest network is QL-Guest; its password changes daily at 06:00.\n",
    )
    .unwrap();
    let app = builder
        .settings(|s| s.database.url = Some(database.url.clone()))
        .open()
        .await;
    let verity = &app.verity;
    assert_eq!(verity.store().backend(), Backend::Postgres);
    assert!(
        !app.settings.data_dir.join("verity.sqlite3").exists(),
        "no SQLite file when Postgres is configured"
    );

    let options = IngestOptions::new("it");
    let local = Caller::local();
    let ingest = || {
        verity.ingest(
            &local,
            IngestInput::Paths(vec![docs.clone()]),
            &options,
            &Quiet,
        )
    };
    let first = ingest().await.unwrap();
    assert_eq!(first.documents_added, 1);
    let again = ingest().await.unwrap();
    assert_eq!((again.documents_unchanged, again.chunks_embedded), (1, 0));

    let (answer, _) = verity
        .query(
            &Caller::local(),
            QueryRequest {
                question: "When does the guest wifi password change?".into(),
                collection: Some("it".into()),
                top_k: None,
                mode: None,
                filter: None,
                stream: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
    assert!(answer.answer.contains("06:00"));

    verity.store().close().await;
    drop(app);
    database.drop_database().await;
}

#[tokio::test]
async fn ingest_and_answer_on_postgres_and_a_qdrant_server() {
    let Ok(qdrant_url) = std::env::var("QDRANT_URL") else {
        eprintln!("Qdrant server end-to-end test not run: QDRANT_URL is not set");
        return;
    };
    let Some(database) = TestDatabase::create("Qdrant server end-to-end test").await else {
        return;
    };
    let builder = TestApp::builder();
    let docs = builder.docs();
    fs::write(
        docs.join("wifi.md"),
        "# Wifi\n\nThe guest network is QL-Guest; its password changes daily at 06:00.\n",
    )
    .unwrap();
    let app = builder
        .settings(|s| {
            s.database.url = Some(database.url.clone());
            s.index.qdrant_url = Some(qdrant_url);
            s.index.qdrant_collection = format!("verity_e2e_{}", uuid::Uuid::new_v4().simple());
        })
        .open()
        .await;
    let verity = &app.verity;
    assert!(
        !app.settings.data_dir.join("index").exists(),
        "no Edge shard when a Qdrant server is configured"
    );

    let options = IngestOptions::new("it");
    let report = verity
        .ingest(
            &Caller::local(),
            IngestInput::Paths(vec![docs.clone()]),
            &options,
            &Quiet,
        )
        .await
        .unwrap();
    assert_eq!(report.documents_added, 1);
    for mode in verity_core::RetrievalMode::ALL {
        let (answer, _) = verity
            .query(
                &Caller::local(),
                QueryRequest {
                    question: "When does the guest wifi password change?".into(),
                    collection: Some("it".into()),
                    top_k: None,
                    mode: Some(mode),
                    filter: None,
                    stream: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            answer.grounding.status,
            GroundingStatus::Grounded,
            "{mode:?}"
        );
        assert!(answer.answer.contains("06:00"), "{mode:?}");
    }
    let reconcile = verity
        .reconcile(&Caller::local(), Some("it"), true)
        .await
        .unwrap();
    assert_eq!(
        (reconcile.missing_in_index, reconcile.orphans_in_index),
        (0, 0)
    );

    verity.store().close().await;
    drop(app);
    database.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_qdrant_server_at_start_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_for(dir.path());
    settings.index.qdrant_url = Some("http://127.0.0.1:1".into());
    let err = verity_cli::open(&settings)
        .await
        .err()
        .expect("opening must fail");
    let message = format!("{err:#}");
    assert!(
        message.contains("cannot reach the Qdrant server at http://127.0.0.1:1"),
        "{message}"
    );
}
