#!/usr/bin/env bash
# mistral.rs (through `verity bench generate`) and llama.cpp (`llama-bench`) side by side, on
# one GGUF file and the same 2 threads, alternating per prompt size so both see the same
# machine load: time to first token (prefill) and decode speed.
#
#   scripts/bench-generate-vs-llama.sh MODEL_DIR LLAMA_BUILD_BIN [VERITY_BIN] [SIZES]
#
# MODEL_DIR holds one .gguf (scripts/models.sh qwen2.5-0.5b); LLAMA_BUILD_BIN is the bin/
# folder of a llama.cpp build (docs/benchmarks.md says how to build one); VERITY_BIN defaults
# to the debug build; SIZES to "500 1000 2000" (tokens of sources in the prompt). Prints one
# JSON object per line.
set -euo pipefail
model_dir=${1:?MODEL_DIR}
llama_bin=${2:?LLAMA_BUILD_BIN}
verity=${3:-${CARGO_TARGET_DIR:-target}/debug/verity}
sizes=${4:-500 1000 2000}
gguf=$(ls "$model_dir"/*.gguf | head -1)
for size in $sizes; do
  line=$(VERITY_LOG=error "$verity" bench generate --model "$model_dir" --cpu --prompt-tokens "$size" \
    --max-tokens 32 --requests 1 --overhead-rounds 0 --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"engine":"mistral.rs","sources_tokens":'"$size"',"prompt_tokens":r["engine_prompt_tokens"],"first_token_ms":round(r["cold_first_token_ms"]),"prefill_tokens_per_s":round(r["cold_prefill_tokens_per_s"],1),"decode_tokens_per_s":round(r["cold_decode_tokens_per_s"],1)}))')
  echo "$line"
  # llama-bench on a prompt of the length mistral.rs just prefilled, and 32 decoded tokens.
  prompt=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["prompt_tokens"])')
  LD_LIBRARY_PATH="$llama_bin" "$llama_bin/llama-bench" -m "$gguf" -t 2 -r 1 -p "$prompt" -n 32 -o json 2>/dev/null |
    python3 -c 'import json,sys
rows=json.load(sys.stdin)
out={"engine":"llama.cpp","sources_tokens":'"$size"'}
for r in rows:
    if r["n_prompt"]>0: out["prompt_tokens"]=r["n_prompt"]; out["prefill_tokens_per_s"]=round(r["avg_ts"],1); out["first_token_ms"]=round(1000*r["n_prompt"]/r["avg_ts"])
    if r["n_gen"]>0: out["decode_tokens_per_s"]=round(r["avg_ts"],1)
print(json.dumps(out))'
done
