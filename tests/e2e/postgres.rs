//! The same service on Postgres: the metadata store chosen by `database.url`, the vector index
//! still the embedded Qdrant Edge shard. Runs when `DATABASE_URL` names a Postgres server
//! (scripts/test.sh sets it), in a database of its own.

use std::fs;

use verity_cli::app::Verity;
use verity_cli::pipeline::{IngestOptions, Quiet};
use verity_core::{AnswerService, GroundingStatus, QueryRequest};
use verity_store::Backend;

use crate::helpers::{TestDatabase, settings_for};

#[tokio::test]
async fn ingest_and_answer_with_the_metadata_in_postgres() {
    let Some(database) = TestDatabase::create("postgres end-to-end test").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    fs::create_dir_all(&docs).unwrap();
    fs::write(
        docs.join("wifi.md"),
        "# Wifi\n\nThe guest network is QL-Guest; its password changes daily at 06:00.\n",
    )
    .unwrap();
    let mut settings = settings_for(&dir.path().join("data"));
    settings.database.url = Some(database.url.clone());
    let verity = Verity::open(settings).await.unwrap();
    assert_eq!(verity.store.backend(), Backend::Postgres);
    assert!(
        !dir.path().join("data/verity.sqlite3").exists(),
        "no SQLite file when Postgres is configured"
    );

    let options = IngestOptions::new("it");
    let ingest = || verity.ingest_paths(std::slice::from_ref(&docs), &options, &Quiet);
    let first = ingest().await.unwrap();
    assert_eq!(first.documents_added, 1);
    let again = ingest().await.unwrap();
    assert_eq!((again.documents_unchanged, again.chunks_embedded), (1, 0));

    let (answer, _) = verity
        .query(QueryRequest {
            question: "When does the guest wifi password change?".into(),
            collection: Some("it".into()),
            top_k: None,
            mode: None,
            filter: None,
        })
        .await
        .unwrap();
    assert_eq!(answer.grounding.status, GroundingStatus::Grounded);
    assert!(answer.answer.contains("06:00"));

    verity.store.close().await;
    drop(verity);
    database.drop_database().await;
}
