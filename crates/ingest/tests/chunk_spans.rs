//! Chunk spans must point exactly back into the normalised document text, whatever the text.

use std::path::PathBuf;

use proptest::prelude::*;
use verity_core::DocumentFormat;
use verity_ingest::{Chunker, ChunkerConfig, parse_bytes};

fn model_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VERITY_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        // The default model's tokenizer (scripts/setup.sh installs it), else all-MiniLM-L6-v2's.
        manifest.join("../../data/models/multilingual-e5-small"),
        manifest.join("../../../shared/models/multilingual-e5-small"),
        manifest.join("../../data/models/all-MiniLM-L6-v2-onnx"),
        manifest.join("../../../shared/models/all-MiniLM-L6-v2-onnx"),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("tokenizer.json").exists())
        .expect("the embedding model is missing: run scripts/setup.sh or set VERITY_MODEL_DIR")
}

fn chunker(max_tokens: usize) -> Chunker {
    Chunker::from_model_dir(
        &model_dir(),
        ChunkerConfig {
            target_tokens: max_tokens / 2,
            max_tokens,
        },
    )
    .unwrap()
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,12}",
        "[A-Z][a-z]{0,8}",
        Just("vacación".to_string()),
        Just("São".to_string()),
        Just("niño".to_string()),
        Just("日本語".to_string()),
        Just("🙂".to_string()),
        Just("e\u{301}".to_string()),
        "[0-9]{1,4}",
        Just("**bold**".to_string()),
        Just("`code`".to_string()),
    ]
}

fn paragraph() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..40).prop_map(|w| w.join(" ") + ".")
}

fn block() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => paragraph(),
        1 => (1usize..4, "[A-Z][a-z]{2,10}").prop_map(|(l, t)| format!("{} {t}", "#".repeat(l))),
        1 => prop::collection::vec(paragraph(), 1..4).prop_map(|items| items.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n")),
    ]
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(block(), 1..25),
        prop_oneof![Just("\n\n"), Just("\r\n\r\n"), Just("\n \n\n")],
    )
        .prop_map(|(blocks, sep)| blocks.join(sep))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn chunk_spans_map_back_to_the_normalised_text(raw in document(), max_tokens in 8usize..80, markdown in any::<bool>()) {
        let format = if markdown { DocumentFormat::Markdown } else { DocumentFormat::Text };
        let Ok(doc) = parse_bytes(raw.as_bytes(), format, "fallback") else { return Ok(()) };
        let chunks = chunker(max_tokens).chunk("doc", &doc);
        prop_assert!(!chunks.is_empty());
        let chars: Vec<char> = doc.text.chars().collect();
        let mut previous_end = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            prop_assert_eq!(chunk.ordinal as usize, i);
            prop_assert!(chunk.start >= previous_end, "chunks overlap or go backwards");
            prop_assert!(chunk.end <= chars.len());
            let span: String = chars[chunk.start..chunk.end].iter().collect();
            prop_assert_eq!(&span, &chunk.text);
            prop_assert!(!chunk.text.trim().is_empty());
            previous_end = chunk.end;
        }
    }
}

#[test]
fn chunks_respect_the_token_budget_and_carry_heading_paths() {
    let text = "# Leave\n\nIntro paragraph about leave.\n\n## Annual leave\n\n".to_string()
        + &"Employees get twenty working days of annual leave every year. ".repeat(30)
        + "\n\n## Sick leave\n\nSick leave needs a medical certificate after three days.";
    let doc = parse_bytes(text.as_bytes(), DocumentFormat::Markdown, "x").unwrap();
    let chunker = chunker(60);
    let chunks = chunker.chunk("doc", &doc);
    assert!(chunks.len() > 3);
    for chunk in &chunks {
        assert!(chunk.token_count <= 60, "{} tokens", chunk.token_count);
    }
    let sick = chunks
        .iter()
        .find(|c| c.text.contains("medical certificate"))
        .unwrap();
    assert_eq!(sick.heading_path, ["Leave", "Sick leave"]);
    let annual = chunks
        .iter()
        .find(|c| c.text.contains("twenty working days"))
        .unwrap();
    assert_eq!(annual.heading_path, ["Leave", "Annual leave"]);
}
