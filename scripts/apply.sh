#!/usr/bin/env bash
# Install stackctl into .venv and deploy the default stack on this box.
# Arguments go to `stackctl apply` (e.g. --mirror DIR on a box without internet).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/stackctl apply -y "$@"
