#!/usr/bin/env bash
# Installs what Verity needs at run time, without touching the system:
#   - ONNX Runtime (the PyPI `onnxruntime` wheel's libonnxruntime.so) into .ort/
#   - the embedding model all-MiniLM-L6-v2 (ONNX), unless one is already present in
#     <data dir>/models/ or ../shared/models/; it is then downloaded from Hugging Face.
#   - on request, real language models for the `mistralrs` backend: VERITY_LLMS="qwen2.5-0.5b"
#     (names separated by spaces; see scripts/models.sh) installs them into
#     <data dir>/models/llm/<name>/.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION="${VERITY_ORT_VERSION:-1.24.4}"
MODEL=all-MiniLM-L6-v2-onnx
DATA_DIR="${VERITY_DATA_DIR:-./data}"

command -v cargo >/dev/null || {
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs); rust-toolchain.toml selects 1.95" >&2
  exit 1
}

if ! ls .ort/onnxruntime/capi/libonnxruntime.so* >/dev/null 2>&1; then
  echo "setup: installing ONNX Runtime ${ORT_VERSION} into .ort/"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target .ort "onnxruntime==${ORT_VERSION}"
fi
ls .ort/onnxruntime/capi/libonnxruntime.so* >/dev/null

have_model() { [ -f "$1/model.onnx" ] && [ -f "$1/tokenizer.json" ]; }
# A copy of the model in a shared/ folder above this checkout (or in VERITY_SHARED_DIR, default
# /work/shared, where this project's machines keep it) is linked into the data directory rather
# than downloaded again.
find_nearby_model() {
  local dir
  dir="$(pwd)"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    if have_model "$dir/shared/models/$MODEL"; then echo "$dir/shared/models/$MODEL"; return 0; fi
  done
  local shared="${VERITY_SHARED_DIR:-/work/shared}/models/$MODEL"
  if have_model "$shared"; then echo "$shared"; return 0; fi
  return 1
}
if [ -n "${VERITY_EMBED__MODEL_DIR:-}" ]; then
  have_model "$VERITY_EMBED__MODEL_DIR" || { echo "setup: VERITY_EMBED__MODEL_DIR=$VERITY_EMBED__MODEL_DIR holds no model" >&2; exit 1; }
elif have_model "$DATA_DIR/models/$MODEL" || have_model "../shared/models/$MODEL"; then
  :
elif nearby="$(find_nearby_model)"; then
  echo "setup: linking the embedding model from $nearby"
  mkdir -p "$DATA_DIR/models"
  ln -sfn "$nearby" "$DATA_DIR/models/$MODEL"
else
  echo "setup: downloading $MODEL from Hugging Face into $DATA_DIR/models/$MODEL"
  target="$DATA_DIR/models/$MODEL"
  mkdir -p "$target.partial"
  base=https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main
  curl -fsSL "$base/onnx/model.onnx" -o "$target.partial/model.onnx"
  for f in tokenizer.json tokenizer_config.json special_tokens_map.json config.json vocab.txt; do
    curl -fsSL "$base/$f" -o "$target.partial/$f"
  done
  rm -rf "$target" && mv "$target.partial" "$target"
fi
if [ -n "${VERITY_LLMS:-}" ]; then
  # shellcheck disable=SC2086 # a list of names
  scripts/models.sh $VERITY_LLMS
fi
echo "setup: ready"
