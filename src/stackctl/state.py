"""What this box runs, recorded under its state dir, so day-two commands work from any folder.

apply records the lock it applied (and the previous one, for rollback), where it rendered the
tree, and its own log. A flock on the state dir keeps two applies from interleaving.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stackctl.errors import NotDeployedError, StateBusyError
from stackctl.fsio import write_text_atomic
from stackctl.layout import host_layout
from stackctl.lock import lockfile_text, read_lockfile
from stackctl.models.lock import Lockfile

STATE_ENV = "STACKCTL_STATE_DIR"  # tests and unprivileged users point this elsewhere
CURRENT = "current.lock.yaml"
PREVIOUS = "previous.lock.yaml"
RECORD = "applied.json"
APPLY_LOG = "apply.log"
LOCK_FILE = "apply.lock"


def state_root() -> Path:
    return Path(os.environ.get(STATE_ENV) or host_layout().state_dir)


def applied_dir() -> Path:
    return state_root() / "applied"


def apply_log_path() -> Path:
    return state_root() / "log" / APPLY_LOG


def rendered_dir(lock: Lockfile) -> Path:
    """Where day-two commands render a recorded lock: inside the state dir, not the cwd."""
    return state_root() / "rendered" / f"{lock.resolved.stack}.{lock.resolved.hardware}"


def record_applied(lock: Lockfile, *, lock_path: Path, tree: Path) -> None:
    """The lock just applied becomes current; a different current one becomes previous."""
    folder = applied_dir()
    text = lockfile_text(lock)
    current = folder / CURRENT
    if current.is_file() and current.read_text(encoding="utf-8") != text:
        write_text_atomic(folder / PREVIOUS, current.read_text(encoding="utf-8"))
    write_text_atomic(current, text)
    record = {
        "lock": str(lock_path.resolve()),
        "rendered": str(tree.resolve()),
        "service": lock.resolved.service,
        "applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text_atomic(folder / RECORD, json.dumps(record, indent=2) + "\n")


def forget_applied(lock: Lockfile) -> None:
    """After destroy: the box runs nothing; the destroyed lock stays as `previous`."""
    folder = applied_dir()
    current = applied_lock()
    if current is None or current.resolved.service != lock.resolved.service:
        return
    write_text_atomic(folder / PREVIOUS, lockfile_text(current))
    (folder / CURRENT).unlink(missing_ok=True)
    (folder / RECORD).unlink(missing_ok=True)


def applied_lock(which: str = CURRENT) -> Lockfile | None:
    path = applied_dir() / which
    return read_lockfile(path) if path.is_file() else None


def require_applied(which: str = CURRENT) -> tuple[Lockfile, Path]:
    path = applied_dir() / which
    lock = applied_lock(which)
    if lock is None:
        what = "no lock has been applied" if which == CURRENT else "no earlier lock to go back to"
        raise NotDeployedError(f"{what} on this box ({path} is missing)")
    return lock, path


@contextmanager
def state_lock(purpose: str) -> Iterator[None]:
    """Hold the state dir's flock for one apply or rollback; a second one is refused at once,
    naming the holder. The kernel drops the flock if we die, so a kill leaves no stale lock."""
    path = state_root() / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateBusyError(
                f"{state_root()} is locked by {holder}", details=[f"lock file: {path}"]
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({purpose})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
