#!/bin/sh
# Configure and build llama.cpp; all output goes to a log the controller can follow.
# usage: build-llamacpp.sh SRC BUILD LOG JOBS TARGETS -- CMAKE_FLAG...
set -eu
src=$1 build=$2 log=$3 jobs=$4 targets=$5
shift 5
[ "$1" = "--" ] && shift
[ "$jobs" -gt 0 ] 2>/dev/null || jobs=$(getconf _NPROCESSORS_ONLN)
# HIP builds compile with ROCm's clang (llama.cpp docs/build.md); CUDA and ROCm tools live
# outside the default PATH.
PATH="/usr/local/cuda/bin:/opt/rocm/bin:$PATH"
export PATH
case " $* " in
*" -DGGML_HIP=ON "*)
    HIPCXX="$(hipconfig -l)/clang"
    HIP_PATH="$(hipconfig -R)"
    export HIPCXX HIP_PATH
    ;;
esac
# With ccache on the box (llama.cpp's CMake picks it up: GGML_CCACHE), every build under this
# cache root shares one compiler cache, paths taken relative to the root: a second build of the
# same source with other backend flags (CPU, then Vulkan) recompiles only what the flags change.
if command -v ccache >/dev/null 2>&1; then
    root=$(dirname "$(dirname "$build")")
    CCACHE_DIR=${CCACHE_DIR:-$(dirname "$root")/ccache}
    CCACHE_BASEDIR=$root
    export CCACHE_DIR CCACHE_BASEDIR
fi
rm -f "$build/build.ok"
mkdir -p "$build"
{
    echo "stackctl: configure $src"
    cmake -S "$src" -B "$build" "$@"
    echo "stackctl: build targets $targets with $jobs jobs"
    # shellcheck disable=SC2086 # targets is a space-separated list of plain target names
    cmake --build "$build" --parallel "$jobs" --target $targets
} >"$log" 2>&1
touch "$build/build.ok"
