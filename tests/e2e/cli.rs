//! The `verity` binary's contract: commands, flags, JSON keys, `--data-dir` before or after the
//! subcommand, and `VERITY_DATA_DIR`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn verity(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verity"));
    command.args(args).env_remove("VERITY_DATA_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("verity runs")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "verity failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn ingest_and_ask_speak_json_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("wifi.md"),
        "# Wifi\n\nThe guest network is called QL-Guest and its password changes daily at 06:00.\n",
    )
    .unwrap();
    // Binary content (an executable) under a Markdown name: no reading of it is text.
    std::fs::write(
        docs.join("broken.md"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x03\x00",
    )
    .unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // --data-dir after the subcommand.
    let report = json_of(&verity(
        &[
            "ingest",
            docs.to_str().unwrap(),
            "--collection",
            "it",
            "--json",
            "--data-dir",
            data,
        ],
        &[],
    ));
    for key in [
        "documents_added",
        "documents_updated",
        "documents_unchanged",
        "documents_removed",
        "documents_failed",
        "chunks_embedded",
    ] {
        assert!(report[key].is_u64(), "{key} missing from {report}");
    }
    assert_eq!(report["documents_added"], 1);
    assert_eq!(report["documents_failed"], 1);

    // --data-dir before the subcommand.
    let answer = json_of(&verity(
        &[
            "--data-dir",
            data,
            "ask",
            "When does the guest wifi password change?",
            "--collection",
            "it",
            "--json",
        ],
        &[],
    ));
    assert_eq!(answer["grounding"]["status"], "grounded", "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains("06:00"));
    assert!(
        answer["citations"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("wifi.md")
    );

    // VERITY_DATA_DIR.
    let again = json_of(&verity(
        &[
            "ingest",
            docs.to_str().unwrap(),
            "--collection",
            "it",
            "--json",
        ],
        &[("VERITY_DATA_DIR", Path::new(data))],
    ));
    assert_eq!(again["documents_unchanged"], 1);
    assert_eq!(again["chunks_embedded"], 0);
}

#[test]
fn asking_an_unknown_collection_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = verity(
        &[
            "ask",
            "anything",
            "--collection",
            "nope",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("collection \"nope\" does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir", data])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server holds the lock (it prints once it listens).
    let mut stderr = server.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 512];
    while !seen.contains("listening") {
        let n = std::io::Read::read(&mut stderr, &mut buffer).unwrap();
        assert!(n > 0, "server exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let output = verity(&["ask", "anything", "--data-dir", data], &[]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("in use by another verity process"),
        "{message}"
    );
}
