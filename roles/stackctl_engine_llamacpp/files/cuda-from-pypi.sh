#!/bin/sh
# Assemble a CUDA toolkit (nvcc, headers, cudart, cuBLAS) from NVIDIA's PyPI wheels, for a box
# that has the driver but no toolkit, or none (a compile check). Prints the toolkit root (for
# CUDAToolkit_ROOT) on stdout. Idempotent: a second run only prints the root.
# usage: cuda-from-pypi.sh DEST CUDA_VERSION PYTHON
# PyPI's CUDA 12 wheels (nvidia-cuda-nvcc-cu12 12.8.93, 12.9.86) ship ptxas but no nvcc, cicc
# or fatbinary; the CUDA 13 wheels (nvidia-cuda-nvcc, -crt, nvidia-nvvm) carry the whole compiler.
set -eu
dest=$1 version=$2 python=$3
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ "$major" -lt 13 ]; then
    echo "stackctl: CUDA $version is not on PyPI as a compiler (the cu12 nvcc wheels carry no nvcc);" \
        "install the toolkit, or use CUDA 13 or newer" >&2
    exit 3
fi
root="$dest/cuda-$major.$minor"
tk="$root/site/nvidia/cu$major"
if [ ! -x "$tk/bin/nvcc" ]; then
    pins=""
    for wheel in nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-runtime nvidia-cublas nvidia-cuda-cccl; do
        pins="$pins $wheel==$major.$minor.*"
    done
    # shellcheck disable=SC2086 # pins is a list of plain requirement strings built above
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
        --target "$root/site" $pins >&2
    # CMake's FindCUDAToolkit links the unversioned names a toolkit installs.
    for lib in cudart cublas cublasLt; do
        ln -sf "lib$lib.so.$major" "$tk/lib/lib$lib.so"
    done
fi
if [ ! -f "$tk/lib/stubs/libcuda.so" ]; then
    # The wheels carry no lib64/stubs/libcuda.so; a toolkit does, so that a box without the
    # driver can link. Same here: every cu* entry point cuda.h declares (after its _v2 renames);
    # the real libcuda.so.1 of the driver is what runs.
    mkdir -p "$tk/lib/stubs"
    echo '#include <cuda.h>' | cc -E -I"$tk/include" - |
        sed -n 's/^\(extern \)\{0,1\}CUresult *\(cu[A-Za-z0-9_]*\) *(.*/\2/p' | sort -u |
        sed 's/.*/int &(void) { return 999; }/' >"$tk/lib/stubs/libcuda.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tk/lib/stubs/libcuda.so" "$tk/lib/stubs/libcuda.c"
fi
ln -sfn lib "$tk/lib64"
"$tk/bin/nvcc" --version >&2
echo "$tk"
