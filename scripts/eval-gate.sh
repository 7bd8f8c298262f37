#!/usr/bin/env bash
# The retrieval-quality gate: evaluates hybrid retrieval on the SQuAD dev slice in a scratch
# data directory and fails when hit@5 or MRR@10 is below the floors in
# tests/data/retrieval-floor.json. Run by scripts/test.sh (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

find_dev_set() {
  [ -n "${VERITY_SQUAD_DEV:-}" ] && { echo "$VERITY_SQUAD_DEV"; return 0; }
  local dir
  dir="$(pwd)"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    [ -f "$dir/shared/data/squad/dev.json" ] && { echo "$dir/shared/data/squad/dev.json"; return 0; }
  done
  [ -f "${VERITY_SHARED_DIR:-/work/shared}/data/squad/dev.json" ] && { echo "${VERITY_SHARED_DIR:-/work/shared}/data/squad/dev.json"; return 0; }
  return 1
}

if [ "${VERITY_SKIP_EVAL_GATE:-}" = 1 ]; then
  echo "eval-gate: skipped (VERITY_SKIP_EVAL_GATE=1)"
  exit 0
fi
dev="$(find_dev_set)" || {
  echo "eval-gate: the SQuAD dev slice (shared/data/squad/dev.json) was not found; set VERITY_SQUAD_DEV=/path/to/dev.json, or VERITY_SKIP_EVAL_GATE=1 to skip this gate" >&2
  exit 1
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
VERITY_LOG=error cargo run --locked --quiet --bin verity -- \
  --data-dir "$scratch" eval squad "$dev" --mode hybrid --json > "$scratch/report.json"

python3 - "$scratch/report.json" tests/data/retrieval-floor.json <<'PY'
import json, sys
report, floor = (json.load(open(p)) for p in sys.argv[1:3])
assert report["mode"] == floor["mode"], (report["mode"], floor["mode"])
failed = [k for k in ("hit@5", "mrr@10") if report[k] < floor[k]]
for k in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10"):
    bound = f"(floor {floor[k]})" if k in floor else ""
    print(f"eval-gate: {report['mode']} {k} = {report[k]:.3f} {bound}")
if failed:
    sys.exit(f"eval-gate: FAILED: {', '.join(failed)} below the floor in tests/data/retrieval-floor.json")
print("eval-gate: passed")
PY
