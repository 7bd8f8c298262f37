//! `verity eval answers` on a small SQuAD file (tests/data/answers-eval.json) with the
//! extractive generator: the figures must be the ones the file was written to produce.
//!
//! The file: two articles, English (a v1.1-style question list: no `is_impossible`) and Spanish.
//! Its six answerable questions each repeat the words of the one sentence that holds the gold
//! answer, so the extractive answer quotes that sentence. Of its three unanswerable questions,
//! two are off topic (the abstention gate refuses them) and one ("the second librarian") is on
//! topic: the gate lets it through and the extractive answer quotes the article's sentences
//! closest to it — each supported by its passage, none an answer, which is what the report must
//! show.

use std::process::Command;

use serde_json::Value;

use crate::helpers::repo_root;

fn eval_answers(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = repo_root().join("tests/data/answers-eval.json");
    let output = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "eval",
            "answers",
        ])
        .arg(&file)
        .args(["--json"])
        .args(extra)
        .env_remove("VERITY_DATA_DIR")
        .env("VERITY_GENERATION_BACKEND", "extractive")
        .output()
        .expect("verity runs");
    assert!(
        output.status.success(),
        "verity eval answers failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn count(tally: &Value, key: &str) -> u64 {
    tally[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {tally}"))
}

#[test]
fn every_figure_of_the_report_is_what_the_file_implies() {
    let report = eval_answers(&[]);
    assert_eq!(report["generator"], "extractive");
    assert_eq!(report["documents"], 2);
    let all = &report["overall"];
    assert_eq!(count(all, "questions"), 9);
    assert_eq!(count(all, "answerable"), 6);
    assert_eq!(count(all, "unanswerable"), 3);
    assert_eq!(count(all, "answered_with_gold"), 6, "{report:#}");
    assert_eq!(count(all, "answered_without_gold"), 0);
    assert_eq!(count(all, "abstained_on_answerable"), 0);
    assert_eq!(count(all, "abstained_on_unanswerable"), 2, "{report:#}");
    assert_eq!(count(all, "answered_on_unanswerable"), 1);
    assert_eq!(all["answered_with_gold_rate"], 1.0);
    assert!((all["abstained_on_unanswerable_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(count(all, "fallbacks"), 0);
    assert_eq!(count(all, "removed_sentences"), 0);

    // Per language: the English article's 4 + 2, the Spanish one's 2 + 1.
    let en = &report["by_language"]["en"];
    let es = &report["by_language"]["es"];
    assert_eq!((count(en, "answerable"), count(en, "unanswerable")), (4, 2));
    assert_eq!((count(es, "answerable"), count(es, "unanswerable")), (2, 1));
    assert_eq!(count(es, "answered_with_gold"), 2, "{report:#}");
    assert_eq!(count(es, "abstained_on_unanswerable"), 1);

    let questions = report["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 9);
    let by_id = |id: &str| {
        questions
            .iter()
            .find(|q| q["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {report:#}"))
    };
    // Each answered answerable question cites its passage, which holds the gold answer; the
    // score of each is recomputed here from the answer text.
    for q in questions.iter().filter(|q| q["answerable"] == true) {
        assert_eq!(q["status"], "grounded", "{q:#}");
        assert_eq!(q["contains_gold"], true, "{q:#}");
        let answer = q["answer"].as_str().unwrap().to_lowercase();
        assert!(
            q["gold"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| answer.contains(&g.as_str().unwrap().to_lowercase())),
            "{q:#}"
        );
        assert!(count(q, "cited") >= 1);
        let f1 = q["f1"].as_f64().unwrap();
        assert!(
            f1 > 0.0 && f1 < 1.0,
            "a sentence is longer than its span: {q:#}"
        );
    }
    // Citation precision: the share of cited passages holding a gold answer, over the
    // answerable questions' answers.
    let cited: u64 = questions
        .iter()
        .filter(|q| q["answerable"] == true)
        .map(|q| count(q, "cited"))
        .sum();
    let with_gold: u64 = questions
        .iter()
        .filter(|q| q["answerable"] == true)
        .map(|q| count(q, "cited_with_gold"))
        .sum();
    assert!(with_gold >= 6, "every answer cites its gold passage");
    let precision = all["citation_precision"].as_f64().unwrap();
    assert!((precision - with_gold as f64 / cited as f64).abs() < 1e-9);

    let second = by_id("en-3");
    assert_eq!(second["answerable"], false);
    assert_eq!(second["status"], "grounded");
    assert!(
        second["answer"]
            .as_str()
            .unwrap()
            .contains("Harbor Library"),
        "{second:#}"
    );
    assert!(count(second, "cited") >= 1);
    for id in ["en-6", "es-3"] {
        let off_topic = by_id(id);
        assert_eq!(off_topic["status"], "abstained", "{off_topic:#}");
        assert_eq!(off_topic["cited"], 0);
        assert_eq!(off_topic["f1"], 0.0);
    }
    assert_eq!(by_id("es-1")["language"], "es");

    let p50 = all["latency_p50_ms"].as_f64().unwrap();
    let p95 = all["latency_p95_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p95, "{p50} {p95}");
}

#[test]
fn a_sample_keeps_the_files_share_of_unanswerable_questions_and_its_seed() {
    // 9 questions, 6 answerable: a sample of 6 takes 4 answerable and 2 unanswerable.
    let first = eval_answers(&["--sample", "6", "--seed", "7"]);
    let all = &first["overall"];
    assert_eq!(count(all, "questions"), 6);
    assert_eq!(count(all, "answerable"), 4);
    assert_eq!(count(all, "unanswerable"), 2);
    let ids = |report: &Value| -> Vec<String> {
        report["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&first),
        ids(&eval_answers(&["--sample", "6", "--seed", "7"]))
    );
}
