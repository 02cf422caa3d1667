"""A quiet box for the tests that compare speeds: scripts/test.sh runs the fast tests beside
the heavy ones under a shared lock on this file; a test that measures tok/s and compares it
with a prediction takes the lock exclusively, so it waits for them to finish (on a 2-core box
they took half the CPU and one slow sample failed a calibration check)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

QUIET_LOCK = Path(os.environ.get("STACKCTL_QUIET_LOCK", "/tmp/stackctl-quiet.lock"))


@contextmanager
def quiet_box() -> Iterator[None]:
    with QUIET_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
