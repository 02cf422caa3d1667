#!/bin/sh
# Prove the lock's CUDA build compiles without a GPU: build llama-bench with the lock's CMake
# flags (one architecture) using an installed toolkit or NVIDIA's PyPI wheels, then check with
# cuobjdump --list-elf that the binary holds exactly the lock's sm_ targets. Not in the test
# suite: it takes long on 2 cores. Prints the time and the cuobjdump listing.
#
#   nice -n 19 benchmarks/build_cuda.sh [LOCK] [WORKDIR]
#
# LOCK defaults to lockfiles/rtx-4090.lock.yaml (89-real). CUDA_VERSION (default 13.0) picks the
# PyPI toolkit when /usr/local/cuda/bin/nvcc is absent (the engine role's path for a box with
# the driver but no toolkit). No GPU or driver is needed: the link uses the toolkit's
# lib64/stubs/libcuda.so.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
lock=${1:-$here/lockfiles/rtx-4090.lock.yaml}
work=${2:-/var/cache/stackctl/cuda-check}
python=${PYTHON:-$here/.venv/bin/python}
cache=${STACKCTL_CACHE:-/var/cache/stackctl}
files=$here/roles/stackctl_engine_llamacpp/files
start=$(date +%s)

# The lock's source pin, subdir, CUDA flags and targets, one per line.
"$python" - "$lock" >"$work.vars" <<'PY'
import sys
from pathlib import Path
from stackctl.lock import read_lockfile
e = read_lockfile(Path(sys.argv[1])).resolved.engine
assert e.backend == "cuda", f"{sys.argv[1]}: backend {e.backend}, not cuda"
print(e.source.file); print(e.source.sha256); print(e.source_subdir)
print(" ".join(e.cmake_flags))
PY
archive=$(sed -n 1p "$work.vars") sha=$(sed -n 2p "$work.vars") subdir=$(sed -n 3p "$work.vars")
flags=$(sed -n 4p "$work.vars")
echo "lock: $lock"
echo "flags: $flags"

if [ -x /usr/local/cuda/bin/nvcc ]; then
    toolkit=/usr/local/cuda
else
    toolkit=$(sh "$files/cuda-from-pypi.sh" "$cache/cuda-pypi" "${CUDA_VERSION:-13.0}" "$python")
fi
echo "toolkit: $toolkit"
cuobjdump=$toolkit/bin/cuobjdump
if [ ! -x "$cuobjdump" ]; then  # the 13.0 wheel set has none (PyPI's starts at 13.2)
    [ -d "$cache/cuda-pypi/cuobjdump/nvidia" ] ||
        "$python" -m pip install --quiet --no-deps --target "$cache/cuda-pypi/cuobjdump" nvidia-cuda-cuobjdump
    cuobjdump=$(ls "$cache"/cuda-pypi/cuobjdump/nvidia/cu*/bin/cuobjdump)
fi

src=$cache/src/$archive
echo "$sha  $src" | sha256sum -c -
mkdir -p "$work"
[ -f "$work/$subdir/CMakeLists.txt" ] || tar -xzf "$src" -C "$work"

# shellcheck disable=SC2086 # flags are the lock's plain -D options, no spaces inside
cmake -S "$work/$subdir" -B "$work/out" $flags \
    -DCMAKE_CUDA_COMPILER="$toolkit/bin/nvcc" -DCUDAToolkit_ROOT="$toolkit" \
    >"$work/configure.log" 2>&1 ||
    { tail -30 "$work/configure.log"; exit 1; }
cmake --build "$work/out" --parallel "${JOBS:-2}" --target llama-bench >"$work/build.log" 2>&1 ||
    { tail -30 "$work/build.log"; exit 1; }
end=$(date +%s)
echo "build time: $((end - start)) s"

binary=$work/out/bin/llama-bench
"$cuobjdump" --list-elf "$binary" | tee "$work/list-elf.txt"
want=$(echo "$flags" | sed -n 's/.*-DCMAKE_CUDA_ARCHITECTURES=\([^ ]*\).*/\1/p' | tr ';' '\n' |
    sed 's/^\([0-9]*\)\(a\)\{0,1\}-.*/sm_\1\2/' | sort -u | tr '\n' ' ')
have=$(grep -o 'sm_[0-9]*a\{0,1\}' "$work/list-elf.txt" | sort -u | tr '\n' ' ')
echo "lock's sm_ targets: $want"
echo "binary's sm_ targets: $have"
[ "$want" = "$have" ] || { echo "MISMATCH: the binary's sm_ targets are not the lock's"; exit 1; }
echo "OK: llama-bench holds exactly the lock's sm_ targets"
