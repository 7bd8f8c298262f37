#!/usr/bin/env bash
# The main job on the embedded default: set up, build, ingest knowledge/, answer sample
# questions in English and Spanish, then serve the HTTP API on 127.0.0.1:8080 (Ctrl-C stops it;
# pass --no-serve to stop after the questions).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bin verity
verity=target/release/verity
[ -n "${CARGO_TARGET_DIR:-}" ] && verity="$CARGO_TARGET_DIR/release/verity"

"$verity" ingest knowledge/ --prune
"$verity" ask "How many days of annual vacation do employees get?"
"$verity" ask "¿Cómo se reembolsan los gastos de movilización?"
"$verity" ask "Who won the 1998 football World Cup?"
if [ "${1:-}" != "--no-serve" ]; then
  echo
  echo "Try: curl -s localhost:8080/v1/query -H 'content-type: application/json' -d '{\"question\": \"How do I set up the VPN?\"}'"
  exec "$verity" serve
fi
