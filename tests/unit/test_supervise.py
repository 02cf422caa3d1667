"""The supervisor the service role installs where systemd is not PID 1, run for real."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def _wait_for(paths: dict[str, Path], ok: Callable[[dict[str, object]], bool]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = _status(paths)
        if ok(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"supervisor state never got there: {state}")


def _restarted(times: int) -> Callable[[dict[str, object]], bool]:
    return lambda state: state.get("restarts") == times


def test_kills_are_counted_with_backoff(service: dict[str, Path]) -> None:
    """Kill the server twice: restarted each time, 1 s then 2 s apart, and counted."""
    _ensure(service)
    for n in (1, 2):
        pid = _status(service)["server_pid"]
        assert isinstance(pid, int)
        os.kill(pid, 9)
        state = _wait_for(service, _restarted(n))
        assert state["last_exit"] == -9
    assert "restarting in 1s" in service["log"].read_text()
    assert "restarting in 2s" in service["log"].read_text()


@pytest.mark.parametrize(
    ("argv", "code"),
    [([sys.executable, "-c", "raise SystemExit(7)"], 7), (["/nonexistent/llama-server"], 127)],
    ids=["exits at once", "binary missing"],
)
def test_crash_loop_is_reported(service: dict[str, Path], argv: list[str], code: int) -> None:
    service["argv"].write_text(json.dumps(argv))
    _ensure(service)
    state = _wait_for(service, lambda s: s.get("crash_loop") is True)
    assert state["running"] is True, "the supervisor itself survives"
    assert state["last_exit"] == code
    assert isinstance(state["restarts"], int)
    assert state["restarts"] >= 3


def test_server_runs_as_the_service_user(service: dict[str, Path]) -> None:
    """As root with --user, the server's real uid is that user's, not root."""
    if os.geteuid() != 0:
        pytest.skip("demoting needs root")
    nobody = pwd.getpwnam("nobody")
    sleep = shutil.which("sleep")
    assert sleep is not None
    service["argv"].write_text(json.dumps([sleep, "600"]))  # a binary nobody may run
    _run(
        "ensure",
        f"--argv-file={service['argv']}",
        f"--pid-file={service['pid']}",
        f"--log-file={service['log']}",
        "--user=nobody",
    )
    state = _wait_for(service, lambda s: isinstance(s.get("server_pid"), int))
    assert state["server_uid"] == nobody.pw_uid
    pid = state["server_pid"]
    assert isinstance(pid, int)
    assert Path(f"/proc/{pid}").stat().st_uid == nobody.pw_uid


def test_the_server_gets_the_locks_environment_and_a_new_one_restarts_it(
    service: dict[str, Path],
) -> None:
    """What a systemd unit sets with Environment= (GGML_VK_VISIBLE_DEVICES for lavapipe, say)
    reaches the supervised server too; changing it restarts the server."""
    service["argv"].write_text(json.dumps([sys.executable, "-c", (
        "import os, time; print('env', os.environ.get('STACKCTL_TEST_ENV'), flush=True); "
        "time.sleep(600)")]))  # fmt: skip

    def ensure(env: dict[str, str]) -> str:
        return _run("ensure", f"--argv-file={service['argv']}", f"--pid-file={service['pid']}",
                    f"--log-file={service['log']}", f"--env-json={json.dumps(env)}")  # fmt: skip

    def logged(line: str) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if service["log"].is_file() and line in service["log"].read_text():
                return True
            time.sleep(0.1)
        return False

    assert ensure({"STACKCTL_TEST_ENV": "first"}) == "started"
    assert logged("env first")
    assert ensure({"STACKCTL_TEST_ENV": "first"}) == "running"
    assert ensure({"STACKCTL_TEST_ENV": "second"}) == "started"
    assert logged("env second")


def test_stop_cuts_the_backoff_short(service: dict[str, Path]) -> None:
    """A crash loop backs off for 8 s and more; `stop` does not wait that out."""
    service["argv"].write_text(json.dumps([sys.executable, "-c", "raise SystemExit(7)"]))
    _ensure(service)
    _wait_for(service, lambda s: s.get("crash_loop") is True)
    deadline = time.monotonic() + 30
    while "restarting in 8s" not in service["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # now in the 8 s back-off
    started = time.monotonic()
    assert _run("stop", f"--pid-file={service['pid']}") == "stopped"
    assert time.monotonic() - started < 3
