#!/usr/bin/env bash
# Everything the tests need, then the whole test suite: formatting, lints, and every test of
# every crate (unit, property, and end-to-end tests against the real model, SQLite and Qdrant
# Edge). No network is used once setup has run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/eval-gate.sh
