"""Day-two state of a deployed stack on this box: is it running, where are its logs."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stackctl import layout
from stackctl.models.base import StrictModel
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.procs import pid_alive, process_uid

SYSTEMD_DIR = Path("/run/systemd/system")


class ServiceStatus(StrictModel):
    service: str
    manager: str
    running: bool
    pid: int | None
    healthy: bool
    url: str
    log: str
    uid: int | None = None
    restarts: int | None = None
    last_exit: int | None = None
    crash_loop: bool = False
    # systemd's ActiveState, or the supervisor's own (active / inactive): failed or inactive
    # means the server exited and nothing restarts it
    active_state: str | None = None


def has_systemd() -> bool:
    return SYSTEMD_DIR.is_dir()


def _supervised_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _supervisor_state(pid_file: Path) -> dict[str, Any]:
    """What stackctl-supervise records beside its pid file: server pid, uid, restarts."""
    try:
        state = json.loads(Path(f"{pid_file}.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def base_url(lock: Lockfile) -> str:
    host = lock.resolved.runtime.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{lock.resolved.runtime.port}"


def local_api_key(lock: Lockfile) -> str | None:
    """The key this box's server demands (None on loopback, or before apply generated it)."""
    path = layout.api_key_file(lock, layout.host_layout())
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _systemd_state(service: str) -> dict[str, Any]:
    """MainPID and the restart count systemd keeps (NRestarts), in the supervisor's words."""
    shown = subprocess.run(
        ["systemctl", "show", "--property=MainPID,NRestarts,ExecMainStatus,ActiveState", service],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = dict(
        line.partition("=")[::2] for line in shown.stdout.splitlines() if shown.returncode == 0
    )

    def number(name: str) -> int | None:
        value = fields.get(name, "")
        return int(value) if value.isdigit() else None

    return {
        "server_pid": number("MainPID") or None,
        "restarts": number("NRestarts"),
        "last_exit": number("ExecMainStatus"),
        "active_state": fields.get("ActiveState") or None,
    }


def service_status(
    lock: Lockfile, host: HostLayout | None = None, *, probe_health: bool = True
) -> ServiceStatus:
    """The service's state; `probe_health` off skips the /health request (healthy is False)."""
    host = host or layout.host_layout()
    url = base_url(lock)
    state: dict[str, Any] = {}
    if has_systemd():
        manager = "systemd"
        state = _systemd_state(lock.resolved.service)
        pid = _int(state.get("server_pid"))
    else:
        pid_file = Path(layout.pid_file(lock, host))
        manager = "stackctl-supervise"
        supervisor = _supervised_pid(pid_file)
        state = _supervisor_state(pid_file) if supervisor else {}
        # as systemd's unit state: the supervisor gone means nothing restarts the server
        state["active_state"] = "active" if supervisor else "inactive"
        pid = _int(state.get("server_pid"))
        pid = pid if pid is not None and pid_alive(pid) else None
    return ServiceStatus(
        service=lock.resolved.service,
        manager=manager,
        running=pid is not None,
        pid=pid,
        healthy=is_healthy(url) if probe_health else False,
        url=url,
        log=layout.log_file(lock, host),
        uid=process_uid(pid) if pid is not None else None,
        restarts=_int(state.get("restarts")),
        last_exit=_int(state.get("last_exit")),
        crash_loop=state.get("crash_loop") is True,
        active_state=state.get("active_state"),
    )


# Stopping a /health wait early. The wording is shared with the service role's wait, which runs
# on the managed host where stackctl cannot be imported: roles/stackctl_service/library/
# stackctl_wait_health.py carries a copy of these two functions and of CRASH_LOOP_RESTARTS,
# and tests/unit/test_wait_health.py keeps them the same.
CRASH_LOOP_RESTARTS = 3  # stackctl-supervise's CRASH_LOOP_RUNS: three short runs in a row
LOG_LINES = 20


def crash_reason(
    service: str, crash_loop: bool, restarts: int | None, last_exit: int | None, where: str
) -> str:
    what = "is crash-looping" if crash_loop else "exited and is not being restarted"
    count = "unknown" if restarts is None else str(restarts)
    code = "unknown" if last_exit is None else str(last_exit)
    return f"{service} {what} (restarts: {count}, last exit code: {code}); its log: {where}"


def stopped_waiting(url: str, waited: float, reason: str) -> str:
    return f"stopped waiting for {url}/health after {waited:.0f}s: {reason}"


def log_tail(status: ServiceStatus, lines: int = LOG_LINES) -> list[str]:
    """The server log's last lines: the journal's under systemd, else the log file's."""
    if status.manager == "systemd":
        try:
            shown = subprocess.run(
                ["journalctl", "-u", status.service, "-n", str(lines), "-o", "cat", "--no-pager"],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        text = shown.stdout
    else:
        try:
            with Path(status.log).open("rb") as log:
                log.seek(0, 2)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return []
    return [line[:300] for line in text.splitlines()[-lines:]]


class CrashWatch:
    """wait_for_health's give_up callback: a reason (first line) and the log's last lines
    (the rest) once the service is crash-looping or has exited and is not being restarted;
    None while it may still come up. Under systemd, restarts count from the first call."""

    def __init__(self, lock: Lockfile, host: HostLayout | None = None) -> None:
        self.lock = lock
        self.host = host
        self.first_restarts: int | None = None

    def __call__(self) -> str | None:
        from stackctl.render_plan import is_macos

        if is_macos(self.lock):
            return None  # a launchd job keeps no pid file or state here: /health alone
        status = service_status(self.lock, self.host, probe_health=False)  # the wait probes
        if status.manager == "systemd":
            if self.first_restarts is None:
                self.first_restarts = status.restarts or 0
            since = (status.restarts or 0) - self.first_restarts
            crash_loop = since >= CRASH_LOOP_RESTARTS
            where = f"journalctl -u {status.service}"
        else:
            crash_loop = status.crash_loop
            where = status.log
        # the unit, or the supervisor (service_status), is gone: nothing restarts the server
        exited = status.active_state in ("failed", "inactive")
        if not (crash_loop or exited):
            return None
        reason = crash_reason(status.service, crash_loop, status.restarts, status.last_exit, where)
        return "\n".join([reason, *log_tail(status)])
