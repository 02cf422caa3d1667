"""Human progress for long playbook runs: task names as they start, a heartbeat while one runs."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from stackctl.cli.output import info

_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


def _last_percent(log: Path) -> str | None:
    try:
        with log.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        match = _PERCENT.match(line)
        if match:
            return f"{match.group(1)}%"
    return None


class PlaybookProgress:
    """Prints each task once, changed/failed results, and a heartbeat during long tasks."""

    def __init__(self, *, build_log: Path | None, verbose: bool = False) -> None:
        self.build_log = build_log
        self.verbose = verbose
        self.task = ""
        self.count = 0
        self.task_started = time.monotonic()

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "task":
            self.count += 1
            self.task = str(event["task"])
            self.task_started = time.monotonic()
            if self.verbose or "minutes" in self.task:
                info(f"  [{self.count}] {self.task} ...")
        elif kind == "result" and event["status"] in ("changed", "failed", "unreachable"):
            mark = {"changed": "changed", "failed": "FAILED", "unreachable": "UNREACHABLE"}
            info(f"  [{self.count}] {event['task']}: {mark[event['status']]} ({event['host']})")
        elif kind == "result" and "minutes" in str(event["task"]):
            info(f"  [{self.count}] {event['task']}: up to date ({event['host']})")
        elif kind == "retry":
            info(f"  [{self.count}] {event['task']}: waiting ({event.get('attempt')})")

    def on_tick(self, _elapsed: float) -> None:
        elapsed = time.monotonic() - self.task_started
        detail = ""
        if self.build_log is not None and "Build" in self.task:
            percent = _last_percent(self.build_log)
            detail = f", compiling {percent}" if percent else ""
        minutes, seconds = divmod(int(elapsed), 60)
        info(f"  ... {self.task} ({minutes}m{seconds:02d}s elapsed{detail})")
