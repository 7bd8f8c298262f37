//! Generation metrics, registered in the process's default Prometheus registry (served at
//! `GET /metrics`).

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounter, IntCounterVec, IntGauge, register_histogram, register_int_counter,
    register_int_counter_vec, register_int_gauge,
};

pub struct GenerationMetrics {
    pub in_flight: IntGauge,
    pub queued: IntGauge,
    pub rejected: IntCounter,
    pub first_token_seconds: Histogram,
    pub decode_tokens_per_second: Histogram,
    /// Answers by grounding status (`grounded`, `partial`, `abstained`, `fallback`).
    pub answers: IntCounterVec,
}

pub static METRICS: LazyLock<GenerationMetrics> = LazyLock::new(|| GenerationMetrics {
    in_flight: register_int_gauge!("verity_generation_in_flight", "Generations running now")
        .expect("metric registers once"),
    queued: register_int_gauge!(
        "verity_generation_queued",
        "Generations admitted and waiting for a slot"
    )
    .expect("metric registers once"),
    rejected: register_int_counter!(
        "verity_generation_rejected_total",
        "Requests refused with 429 because the generation queue was full"
    )
    .expect("metric registers once"),
    first_token_seconds: register_histogram!(
        "verity_generation_first_token_seconds",
        "Time from the start of a generation to its first token",
        vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    )
    .expect("metric registers once"),
    decode_tokens_per_second: register_histogram!(
        "verity_generation_decode_tokens_per_second",
        "Decode speed of each generation",
        vec![5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0]
    )
    .expect("metric registers once"),
    answers: register_int_counter_vec!(
        "verity_answers_total",
        "Answers by grounding status",
        &["grounding"]
    )
    .expect("metric registers once"),
});
