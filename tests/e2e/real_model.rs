//! The real mistral.rs path with a real model: SmolLM2-135M-Instruct (a 98 MB GGUF) answers a
//! question about an ingested document, and the answer comes back verified, carrying Verity's
//! citation of that document. The model is installed by `scripts/models.sh smollm2-135m`,
//! which `scripts/test.sh` runs before the tests; run by hand without it, the test fails and
//! says so rather than skipping.

use std::time::Instant;

use verity_cli::settings::GenerationBackend;
use verity_core::{AnswerService, Caller, GroundingStatus, QueryRequest};
use verity_service::pipeline::IngestOptions;

use crate::helpers::{TestApp, smollm2_dir, write};

#[test]
fn a_real_model_answers_from_an_ingested_document_with_verified_citations() {
    let model_dir = smollm2_dir();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let builder = TestApp::builder();
        let policy = write(
            &builder.docs(),
            "vacation.md",
            "# Annual vacation\n\nEvery full-time employee receives 20 working days of paid \
             vacation per calendar year. Up to 5 unused days may be carried over into the next \
             calendar year; carried-over days must be taken by 31 March.\n",
        );
        let loading = Instant::now();
        let app = builder
            .settings(|s| {
                s.generation.backend = GenerationBackend::Mistralrs;
                s.generation.mistralrs.model_dir = Some(model_dir);
                s.generation.mistralrs.force_cpu = true;
                s.generation.max_tokens = 64;
                // The default: the deadline is derived from the model's speed measured at
                // load, so a slow CI machine does not fall back.
                s.generation.timeout_seconds = 0;
            })
            .ingest(vec![policy], IngestOptions::new("default"))
            .generating()
            .open()
            .await;
        let load_seconds = loading.elapsed().as_secs_f64();
        let verity = &app.verity;

        let asking = Instant::now();
        let (answer, timings) = verity
            .query(
                &Caller::local(),
                QueryRequest {
                    // SmolLM2 answers this one with the policy's sentence, but no marker.
                    question: "What does every full-time employee receive per calendar year?"
                        .into(),
                    collection: None,
                    top_k: None,
                    mode: None,
                    filter: None,
                    stream: false,
                },
            )
            .await
            .unwrap();
        eprintln!(
            "SmolLM2-135M: opened, ingested and loaded (with the speed measurement) in \
             {load_seconds:.1} s, answered in \
             {:.1} s (first token {:.0} ms, generation {:.0} ms): {:?} ({:?}: {:?})",
            asking.elapsed().as_secs_f64(),
            timings.first_token_ms,
            timings.generate_ms,
            answer.answer,
            answer.grounding.status,
            answer.grounding.reason
        );

        assert!(
            answer.generator.starts_with("mistralrs:smollm2-135m"),
            "the model wrote the answer, not a fallback: {answer:#?}"
        );
        assert!(
            matches!(
                answer.grounding.status,
                GroundingStatus::Grounded | GroundingStatus::Partial
            ),
            "a verified answer: {answer:#?}"
        );
        assert!(timings.generate_ms > 0.0 && timings.first_token_ms > 0.0);
        // Verity's citation: a marker in the text naming the passage of the policy.
        assert!(answer.answer.contains("[1]"), "{answer:#?}");
        let cited = answer
            .citations
            .iter()
            .find(|c| c.id == 1)
            .expect("citation 1 is listed");
        assert!(cited.source.ends_with("vacation.md"), "{cited:#?}");
        assert!(cited.text.contains("20 working days"), "{cited:#?}");
    });
}
