"""The supervisor the service role installs where systemd is not PID 1, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackctl.resources import roles_dir

SUPERVISE = roles_dir() / "stackctl_service" / "files" / "stackctl-supervise"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SUPERVISE), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[dict[str, Path]]:
    paths = {
        "argv": tmp_path / "argv.json",
        "pid": tmp_path / "run" / "s.pid",
        "log": tmp_path / "s.log",
    }
    paths["argv"].write_text(
        json.dumps(
            [sys.executable, "-c", "import time; print('serving', flush=True); time.sleep(600)"]
        )
    )
    yield paths
    _run("stop", f"--pid-file={paths['pid']}")


def _ensure(paths: dict[str, Path]) -> str:
    return _run(
        "ensure",
        f"--argv-file={paths['argv']}",
        f"--pid-file={paths['pid']}",
        f"--log-file={paths['log']}",
    )


def _status(paths: dict[str, Path]) -> dict[str, object]:
    state: dict[str, object] = json.loads(_run("status", f"--pid-file={paths['pid']}"))
    return state


def test_ensure_starts_once_then_reports_running(service: dict[str, Path]) -> None:
    assert _ensure(service) == "started"
    assert _ensure(service) == "running"
    state = _status(service)
    assert state["running"] is True
    server_pid = state["server_pid"]
    assert isinstance(server_pid, int)
    os.kill(server_pid, 0)


def test_restarts_a_dead_server(service: dict[str, Path]) -> None:
    _ensure(service)
    first = _status(service)["server_pid"]
    assert isinstance(first, int)
    os.kill(first, 9)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = _status(service).get("server_pid")
        if current not in (None, first):
            break
        time.sleep(0.2)
    assert _status(service)["server_pid"] != first
    assert "restarting" in service["log"].read_text()


def test_changed_command_line_restarts(service: dict[str, Path]) -> None:
    _ensure(service)
    service["argv"].write_text(json.dumps([sys.executable, "-c", "import time; time.sleep(601)"]))
    assert _ensure(service) == "started"


def test_stop(service: dict[str, Path]) -> None:
    _ensure(service)
    assert _run("stop", f"--pid-file={service['pid']}") == "stopped"
    assert _status(service)["running"] is False
    assert _run("stop", f"--pid-file={service['pid']}") == "not running"
