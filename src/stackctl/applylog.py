"""The apply log under the state dir: every task and its result, in words, for `stackctl logs`.

The previous run's log is kept beside it (apply.log.1), so a failed rerun does not hide why the
first one failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TextIO


class ApplyLog:
    def __init__(self, path: Path, title: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
        self.handle: TextIO = path.open("w", encoding="utf-8", buffering=1)
        self.write(title)

    def write(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.handle.write(f"{stamp} {line}\n")

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "play":
            self.write(f"PLAY {event.get('name', '')}")
        elif kind == "task":
            self.write(f"TASK {event.get('task', '')}")
        elif kind == "retry":
            self.write(f"  retry {event.get('attempt')}/{event.get('retries')}")
        elif kind == "result":
            status = event.get("status", "")
            line = f"  {event.get('host', '')}: {status}"
            if status in ("failed", "unreachable"):
                line += f": {event.get('reason') or event.get('msg') or ''}"
            self.write(line)
        elif kind == "stats":
            for host, stats in sorted(event.get("hosts", {}).items()):
                self.write(f"STATS {host}: {stats}")

    def close(self, outcome: str) -> None:
        self.write(outcome)
        self.handle.close()


def tail(path: Path, lines: int) -> list[str]:
    return path.read_bytes().decode(errors="replace").splitlines()[-lines:]
