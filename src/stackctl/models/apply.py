"""Results of running playbooks and of checking the served model."""

from __future__ import annotations

from pydantic import Field

from stackctl.models.base import StrictModel


class HostStats(StrictModel):
    ok: int = 0
    changed: int = 0
    failures: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


LOG_LINE = "  | "  # marks a server log line among a failure's details (PlaybookResult)


class TaskOutcome(StrictModel):
    host: str
    task: str
    status: str
    message: str = ""
    log_tail: list[str] = Field(
        default_factory=list, description="the server log's last lines, from the /health wait"
    )


class PlaybookResult(StrictModel):
    playbook: str
    check: bool
    hosts: dict[str, HostStats]
    changed_tasks: list[TaskOutcome]
    failed_tasks: list[TaskOutcome]
    fetched: dict[str, str] = Field(
        default_factory=dict, description="sha256 of each artefact as fetched: engine-source, model"
    )
    fetched_by_host: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="the same, per inventory host (fleet runs)"
    )

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def failure_details(self) -> list[str]:
        """One line per failed task, each followed by the log lines it brought back."""
        lines = []
        for t in self.failed_tasks:
            lines.append(f"{t.host}: {t.task}: {t.message}")
            lines += [f"{LOG_LINE}{line}" for line in t.log_tail]
        return lines

    @property
    def failed(self) -> bool:
        return bool(self.failed_tasks) or any(
            h.failures or h.unreachable for h in self.hosts.values()
        )


class SmokeResult(StrictModel):
    endpoint: str
    prompt: str
    text: str
    tokens: int
    tg_tps: float | None = Field(description="decode tok/s the server measured for this request")
    pp_tps: float | None
