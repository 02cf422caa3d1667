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
        ["systemctl", "show", "--property=MainPID,NRestarts,ExecMainStatus", service],
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
    }


def service_status(lock: Lockfile, host: HostLayout | None = None) -> ServiceStatus:
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
        state = _supervisor_state(pid_file) if _supervised_pid(pid_file) else {}
        pid = _int(state.get("server_pid"))
        pid = pid if pid is not None and pid_alive(pid) else None
    return ServiceStatus(
        service=lock.resolved.service,
        manager=manager,
        running=pid is not None,
        pid=pid,
        healthy=is_healthy(url),
        url=url,
        log=layout.log_file(lock, host),
        uid=process_uid(pid) if pid is not None else None,
        restarts=_int(state.get("restarts")),
        last_exit=_int(state.get("last_exit")),
        crash_loop=state.get("crash_loop") is True,
    )
