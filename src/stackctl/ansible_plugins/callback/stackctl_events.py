"""Ansible stdout callback: one JSON object per line, for stackctl to follow a run."""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: stackctl_events
    type: stdout
    short_description: JSON lines for stackctl
    description: Prints one JSON object per event (task start, result, retry, stats).
"""

_KEEP = ("msg", "stdout", "stderr", "rc", "cmd", "attempts", "log_tail")
_GENERIC = ("non-zero return code", "One or more items failed", "All items completed")
_TAIL_LINES = 3


def _tail(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return " / ".join(lines[-_TAIL_LINES:])


def failure_reason(data: dict[str, Any]) -> str:
    """A failed task's own reason in one line: the HTTP status, the module's msg, the exit
    code and the last lines of stderr; for a loop, those of the first item that failed."""
    items = [r for r in data.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    parts = []
    if items:
        data = items[0]
    if "item" in data:
        parts.append(f"item {str(data['item'])[:200]}")
    status = data.get("status", data.get("status_code"))
    if isinstance(status, int) and (status >= 400 or status < 0):
        parts.append(f"HTTP {status}" if status > 0 else "no HTTP response")
    msg = str(data.get("msg") or "").strip()
    if msg and msg not in _GENERIC:
        parts.append(msg.splitlines()[0][:500])
    rc = data.get("rc")
    if isinstance(rc, int) and rc != 0:
        parts.append(f"exit {rc}")
    output = _tail(data.get("stderr")) or (_tail(data.get("stdout")) if rc else "")
    if output:
        parts.append(output[-800:])
    return ": ".join(parts) or msg or "failed without a message"


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "stackctl_events"

    def _emit(self, **event: Any) -> None:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()

    def _result(self, status: str, result: Any) -> None:
        data = result._result
        kept = {k: data[k] for k in _KEEP if k in data}
        for key in ("stdout", "stderr", "msg"):
            if isinstance(kept.get(key), str):
                kept[key] = kept[key][-4000:]
        if status in ("failed", "ignored", "unreachable"):
            kept["reason"] = failure_reason(data)
        self._emit(
            event="result",
            status=status,
            host=result._host.get_name(),
            task=result._task.get_name(),
            changed=bool(data.get("changed")),
            **kept,
        )

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit(event="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._emit(event="task", task=task.get_name())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit(event="task", task=task.get_name(), handler=True)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_runner_retry(self, result: Any) -> None:
        self._emit(
            event="retry",
            host=result._host.get_name(),
            task=result._task.get_name(),
            attempt=result._result.get("attempts"),
            retries=result._result.get("retries"),
        )

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._result("failed", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed.keys())}
        self._emit(event="stats", hosts=hosts)

    def v2_on_any(self, *args: Any, **kwargs: Any) -> None:
        return None
