//! Crash consistency: `verity ingest` is killed (SIGKILL) at each step of writing a document;
//! right after the crash no searchable chunk may be one the store does not hold as active, and
//! after `verity reconcile` every active chunk is searchable and nothing else is. Runs on
//! SQLite + Qdrant Edge, and on Postgres + Qdrant Edge when DATABASE_URL is set.

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::helpers::{TestDatabase, settings_for, verity_command};

const FAULT_POINTS: &[&str] = &[
    "after_store_write",
    "mid_index_batch",
    "before_status_update",
    "before_publish",
];

/// A document long enough to need several index batches (more than 64 chunks).
fn big_document(version: &str) -> String {
    let mut text = format!("# Warehouse zones ({version})\n\n");
    for i in 0..80 {
        text.push_str(&format!(
            "Zone {i} of the {version} layout stores pallets of type T{i}. Forklifts in zone {i} are \
             serviced every {} days, and the zone supervisor answers on extension {}. Access to zone \
             {i} needs badge level {}. Fire exits of zone {i} are marked in green and checked \
             every week by the safety officer.\n\n",
            i % 7 + 1,
            4000 + i,
            i % 3 + 1
        ));
    }
    text
}

fn verity(data: &Path, database_url: Option<&str>, args: &[&str], fault: Option<&str>) -> Output {
    verity_command(data, database_url, args, fault)
        .output()
        .expect("verity runs")
}

/// Visible chunk ids in the index and active chunk ids in the store, for the collection.
async fn snapshot(data: &Path, database_url: Option<&str>) -> (HashSet<String>, HashSet<String>) {
    let mut settings = settings_for(data);
    settings.database.url = database_url.map(str::to_string);
    let verity = verity_cli::open(&settings).await.unwrap();
    let visible = verity
        .index()
        .list_points("kb")
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.visible)
        .map(|p| p.chunk_id)
        .collect();
    let mut active = HashSet::new();
    for document in verity.store().documents_in_collection("kb").await.unwrap() {
        if document.active {
            active.extend(
                verity
                    .store()
                    .chunks_of(&document.id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| c.id),
            );
        }
    }
    verity.store().close().await;
    (visible, active)
}

async fn crash_and_recover(point: &str, database_url: Option<&str>) {
    {
        let dir = tempfile::tempdir().unwrap();
        let (docs, data) = (dir.path().join("docs"), dir.path().join("data"));
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("zones.md"), big_document("old")).unwrap();
        std::fs::write(
            docs.join("other.md"),
            "# Other\n\nThe canteen opens at noon.\n",
        )
        .unwrap();
        let docs_arg = docs.to_str().unwrap();
        let first = verity(
            &data,
            database_url,
            &["ingest", docs_arg, "--collection", "kb", "--json"],
            None,
        );
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );

        // The changed document's ingest dies at `point`.
        std::fs::write(docs.join("zones.md"), big_document("new")).unwrap();
        let crashed = verity(
            &data,
            database_url,
            &["ingest", docs_arg, "--collection", "kb", "--json"],
            Some(point),
        );
        assert!(
            !crashed.status.success(),
            "{point}: the ingest should have been killed"
        );

        let (visible, active) = snapshot(&data, database_url).await;
        let stray: Vec<_> = visible.difference(&active).collect();
        assert!(
            stray.is_empty(),
            "{point}: {} searchable chunks are not active in the store",
            stray.len()
        );

        let reconcile = verity(
            &data,
            database_url,
            &["reconcile", "--collection", "kb", "--json"],
            None,
        );
        assert!(
            reconcile.status.success(),
            "{}",
            String::from_utf8_lossy(&reconcile.stderr)
        );
        let report: Value = serde_json::from_slice(&reconcile.stdout).unwrap();
        for key in ["missing_in_index", "orphans_in_index", "repaired"] {
            assert!(report[key].is_u64(), "{key} missing from {report}");
        }
        let (visible, active) = snapshot(&data, database_url).await;
        assert_eq!(
            visible, active,
            "{point}: after reconcile the index must show exactly the active chunks"
        );
        let again = verity(
            &data,
            database_url,
            &["reconcile", "--collection", "kb", "--json"],
            None,
        );
        let again: Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(
            (
                again["missing_in_index"].as_u64(),
                again["orphans_in_index"].as_u64()
            ),
            (Some(0), Some(0)),
            "{point}"
        );

        // Ingesting again finishes the interrupted document: only the new version is found.
        let resumed = verity(
            &data,
            database_url,
            &["ingest", docs_arg, "--collection", "kb", "--json"],
            None,
        );
        assert!(resumed.status.success());
        let answer = verity(
            &data,
            database_url,
            &[
                "ask",
                "Which layout stores pallets of type T42?",
                "--collection",
                "kb",
                "--top-k",
                "10",
                "--json",
            ],
            None,
        );
        let answer: Value = serde_json::from_slice(&answer.stdout).unwrap();
        let texts: Vec<&str> = answer["citations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("new layout")),
            "{point}: new version not found"
        );
        assert!(
            texts.iter().all(|t| !t.contains("old layout")),
            "{point}: old version still found"
        );
        let (visible, active) = snapshot(&data, database_url).await;
        assert_eq!(visible, active, "{point}: after the next ingest");
    }
}

#[tokio::test]
async fn a_killed_ingest_never_exposes_inactive_chunks_and_reconcile_repairs_it_on_sqlite() {
    for point in FAULT_POINTS {
        crash_and_recover(point, None).await;
    }
}

#[tokio::test]
async fn a_killed_ingest_never_exposes_inactive_chunks_and_reconcile_repairs_it_on_postgres() {
    for point in FAULT_POINTS {
        let Some(database) = TestDatabase::create("postgres crash test").await else {
            return;
        };
        crash_and_recover(point, Some(&database.url)).await;
        database.drop_database().await;
    }
}

#[test]
fn the_big_document_needs_several_index_batches() {
    let settings = settings_for(tempfile::tempdir().unwrap().path());
    let model = settings.find_model_dir().unwrap();
    let chunker =
        verity_ingest::Chunker::from_model_dir(&model, settings.chunker_config()).unwrap();
    let document = verity_ingest::parse_bytes(
        big_document("new").as_bytes(),
        verity_core::DocumentFormat::Markdown,
        "zones",
    )
    .unwrap();
    assert!(
        chunker.chunk("zones", &document).len() > 64,
        "mid_index_batch would not be reached"
    );
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_store_by_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, data) = (dir.path().join("docs"), dir.path().join("data"));
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("zones.md"), big_document("only")).unwrap();
    let ingest = verity(
        &data,
        None,
        &[
            "ingest",
            docs.to_str().unwrap(),
            "--collection",
            "kb",
            "--json",
        ],
        None,
    );
    let chunks = serde_json::from_slice::<Value>(&ingest.stdout).unwrap()["chunks_embedded"]
        .as_u64()
        .unwrap();

    std::fs::remove_dir_all(data.join("index")).unwrap();
    let dry = verity(&data, None, &["reconcile", "--dry-run", "--json"], None);
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (dry["missing_in_index"].as_u64(), dry["repaired"].as_u64()),
        (Some(chunks), Some(0))
    );

    let repaired = verity(&data, None, &["reconcile", "--json"], None);
    let repaired: Value = serde_json::from_slice(&repaired.stdout).unwrap();
    assert_eq!(repaired["repaired"].as_u64(), Some(chunks));
    let (visible, active) = snapshot(&data, None).await;
    assert_eq!(visible.len() as u64, chunks);
    assert_eq!(visible, active);
}
