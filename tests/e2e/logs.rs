//! Request ids and the request log: every response carries `X-Request-Id`; with
//! `VERITY_LOG_FORMAT=json` each request is one JSON line with its id, status and caller, and
//! e-mail addresses and card numbers in paths are redacted.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{knowledge_app, verity_command};

#[test]
fn every_response_carries_a_request_id_and_a_plain_client_id_is_kept() {
    let app = knowledge_app();
    app.runtime.block_on(async {
        let client = reqwest::Client::new();
        let fresh = client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap();
        let id = fresh.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 32);
        let kept = client
            .get(format!("{}/no-such-route", app.base_url))
            .header("x-request-id", "support-ticket-4711")
            .send()
            .await
            .unwrap();
        assert_eq!(kept.status(), 404);
        assert_eq!(kept.headers()["x-request-id"], "support-ticket-4711");
        let replaced = client
            .get(format!("{}/healthz", app.base_url))
            .header("x-request-id", "has spaces and {braces}")
            .send()
            .await
            .unwrap();
        assert_ne!(
            replaced.headers()["x-request-id"],
            "has spaces and {braces}"
        );
    });
}

#[test]
fn json_request_logs_carry_the_id_and_redact_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = verity_command(dir.path(), None, &["serve", "--bind", "127.0.0.1:0"], None)
        .env("VERITY_LOG", "info")
        .env("VERITY_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel::<String>();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || received.recv_timeout(Duration::from_secs(60)).unwrap();
    let address = loop {
        let line = next();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime.block_on(reqwest::get(format!(
        "http://{address}/healthz?owner=maria.lopez@acme.example&card=4111+1111+1111+1111"
    )));
    let _ = server.kill();
    let _ = server.wait();
    let id = response.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut logged = None;
    while let Ok(line) = received.recv_timeout(Duration::from_secs(5)) {
        assert!(
            !line.contains("maria.lopez"),
            "an e-mail address was logged: {line}"
        );
        assert!(!line.contains("4111"), "a card number was logged: {line}");
        if let Ok(value) = serde_json::from_str::<Value>(&line)
            && value["fields"]["request_id"] == id.as_str()
        {
            logged = Some(value);
        }
    }
    let logged = logged.expect("a JSON log line for the request");
    assert_eq!(logged["fields"]["status"], 200);
    assert_eq!(logged["fields"]["method"], "GET");
    assert!(
        logged["fields"]["path"]
            .as_str()
            .unwrap()
            .contains("owner=[email]")
    );
}
