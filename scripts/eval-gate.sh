#!/usr/bin/env bash
# The retrieval-quality gate: evaluates hybrid retrieval on the English, Spanish and Portuguese
# dev slices (shared/data/{squad,squad-es,faquad-pt}/dev.json) in scratch data directories and
# fails when hit@5 or MRR@10 of any of them is below its floor in
# tests/data/retrieval-floor.json. Run by scripts/test.sh (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

# The folder holding squad/, squad-es/ and faquad-pt/: VERITY_EVAL_DATA, else a shared/data
# folder above this checkout, else ${VERITY_SHARED_DIR:-/work/shared}/data.
find_data_dir() {
  [ -n "${VERITY_EVAL_DATA:-}" ] && { echo "$VERITY_EVAL_DATA"; return 0; }
  local dir
  dir="$(pwd)"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    [ -f "$dir/shared/data/squad/dev.json" ] && { echo "$dir/shared/data"; return 0; }
  done
  [ -f "${VERITY_SHARED_DIR:-/work/shared}/data/squad/dev.json" ] && { echo "${VERITY_SHARED_DIR:-/work/shared}/data"; return 0; }
  return 1
}

if [ "${VERITY_SKIP_EVAL_GATE:-}" = 1 ]; then
  echo "eval-gate: skipped (VERITY_SKIP_EVAL_GATE=1)"
  exit 0
fi
data="$(find_data_dir)" || {
  echo "eval-gate: the dev slices (shared/data/squad/dev.json and its siblings) were not found; set VERITY_EVAL_DATA=/path/to/data, or VERITY_SKIP_EVAL_GATE=1 to skip this gate" >&2
  exit 1
}

cargo build --locked --quiet --bin verity
bin="${CARGO_TARGET_DIR:-target}/debug/verity"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
sets="$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["sets"]))' tests/data/retrieval-floor.json)"
for name in $sets; do
  # "file": one SQuAD-format file; "documents" + "questions": the first file's articles asked
  # with the second's questions in another language (scripts/cross-lingual-set.py).
  files="$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["sets"][sys.argv[2]]; print(" ".join([s["file"]] if "file" in s else [s["documents"], s["questions"]]))' tests/data/retrieval-floor.json "$name")"
  for file in $files; do
    [ -f "$data/$file" ] || { echo "eval-gate: $data/$file is missing" >&2; exit 1; }
  done
  set -- $files
  if [ $# -eq 2 ]; then
    python3 scripts/cross-lingual-set.py "$data/$1" "$data/$2" "$scratch/$name.set.json" >/dev/null
    input="$scratch/$name.set.json"
  else
    input="$data/$1"
  fi
  VERITY_LOG=error "$bin" --data-dir "$scratch/$name" eval squad "$input" --mode hybrid --json \
    > "$scratch/$name.json"
done

python3 - "$scratch" tests/data/retrieval-floor.json <<'PY'
import json, os, sys
scratch, floors = sys.argv[1], json.load(open(sys.argv[2]))
failed = []
for name, floor in floors["sets"].items():
    report = json.load(open(os.path.join(scratch, name + ".json")))
    assert report["mode"] == floors["mode"], (report["mode"], floors["mode"])
    for k in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10"):
        bound = f"(floor {floor[k]})" if k in floor else ""
        print(f"eval-gate: {name} {report['mode']} {k} = {report[k]:.3f} {bound}")
    print(f"eval-gate: {name} abstains on {report['abstain_rate_answerable']:.1%} of answerable questions"
          f" (ceiling {floor['max_abstain_answerable']:.0%}), {report['abstain_rate_unanswerable']:.1%} of unanswerable")
    failed += [f"{name} {k}" for k in ("hit@5", "mrr@10") if report[k] < floor[k]]
    if report["abstain_rate_answerable"] > floor["max_abstain_answerable"]:
        failed.append(f"{name} abstention on answerable questions")
if failed:
    sys.exit(f"eval-gate: FAILED: {', '.join(failed)} (tests/data/retrieval-floor.json)")
print("eval-gate: passed")
PY
