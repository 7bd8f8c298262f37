//! The ingest queue: `verity ingest --enqueue` and `verity worker`.

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::helpers::{TestDatabase, verity_command};

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn write_documents(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::write(
            dir.join(format!("doc-{i:02}.md")),
            format!(
                "# Document {i}\n\nDocument {i} says the answer is {}.\n",
                i * 7
            ),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn two_workers_ingest_every_file_of_a_batch_exactly_once() {
    let Some(database) = TestDatabase::create("worker test").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write_documents(&docs, 12);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let url = Some(database.url.as_str());

    let job = json(
        &verity_command(
            &a,
            url,
            &[
                "ingest",
                docs.to_str().unwrap(),
                "--collection",
                "kb",
                "--enqueue",
                "--json",
            ],
            None,
        )
        .output()
        .unwrap(),
    );
    assert_eq!(job["files"], 12);
    let job_id = job["job_id"].as_i64().unwrap();

    // Two workers on the same queue at once (each with its own embedded index; the queue is
    // what is under test).
    let spawn = |data: &Path, name: &str| {
        verity_command(data, url, &["worker", "--name", name, "--json"], None)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a, "w1"), spawn(&b, "w2"));
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let (r1, r2) = (json(&first), json(&second));
    assert_eq!(
        r1["files_done"].as_u64().unwrap() + r2["files_done"].as_u64().unwrap(),
        12,
        "{r1} {r2}"
    );

    let progress = json(
        &verity_command(&a, url, &["job", &job_id.to_string(), "--json"], None)
            .output()
            .unwrap(),
    );
    assert_eq!(
        (
            progress["done"].as_i64(),
            progress["queued"].as_i64(),
            progress["failed"].as_i64()
        ),
        (Some(12), Some(0), Some(0))
    );

    let store = verity_store::Store::connect(&database.url).await.unwrap();
    for (path, worker, attempts) in store.job_files(job_id).await.unwrap() {
        assert_eq!(attempts, 1, "{path} was claimed {attempts} times");
        assert!(
            matches!(worker.as_deref(), Some("w1" | "w2")),
            "{path}: {worker:?}"
        );
    }
    let documents = store.documents_in_collection("kb").await.unwrap();
    assert_eq!(documents.len(), 12);
    assert!(
        documents.iter().all(|d| d.active && d.version == 1),
        "a document was written twice"
    );
    store.close().await;
    database.drop_database().await;
}

#[tokio::test]
async fn a_killed_workers_file_is_taken_again_when_its_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, data) = (dir.path().join("docs"), dir.path().join("data"));
    write_documents(&docs, 2);
    let job = json(
        &verity_command(
            &data,
            None,
            &[
                "ingest",
                docs.to_str().unwrap(),
                "--collection",
                "kb",
                "--enqueue",
                "--json",
            ],
            None,
        )
        .output()
        .unwrap(),
    );
    let job_id = job["job_id"].as_i64().unwrap();

    let crashed = verity_command(
        &data,
        None,
        &["worker", "--name", "doomed", "--lease-seconds", "1"],
        Some("after_store_write"),
    )
    .output()
    .unwrap();
    assert!(
        !crashed.status.success(),
        "the worker should have been killed"
    );
    let waiting = json(
        &verity_command(&data, None, &["job", &job_id.to_string(), "--json"], None)
            .output()
            .unwrap(),
    );
    assert_eq!(waiting["running"], 1, "{waiting}");

    std::thread::sleep(std::time::Duration::from_millis(2100));
    let report = json(
        &verity_command(&data, None, &["worker", "--name", "heir", "--json"], None)
            .output()
            .unwrap(),
    );
    assert_eq!(report["files_done"], 2);
    let progress = json(
        &verity_command(&data, None, &["job", &job_id.to_string(), "--json"], None)
            .output()
            .unwrap(),
    );
    assert_eq!(progress["done"], 2, "{progress}");
    let answer = json(
        &verity_command(
            &data,
            None,
            &[
                "ask",
                "What does document 1 say?",
                "--collection",
                "kb",
                "--json",
            ],
            None,
        )
        .output()
        .unwrap(),
    );
    assert!(
        answer["answer"]
            .as_str()
            .unwrap()
            .contains("the answer is 7"),
        "{answer}"
    );
}
