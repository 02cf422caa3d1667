"""Both /health waits stop as soon as the service crash-loops or has exited for good: the
service role's module (roles/stackctl_service/library/stackctl_wait_health.py, imported from
its file as Ansible ships it) and stackctl's wait_for_health with service.CrashWatch. Run
against the real stackctl-supervise, a real HTTP server and the real ansible-playbook."""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stackctl import layout, service
from stackctl.apply import run_playbook, wait_for_health
from stackctl.errors import ApplyError
from stackctl.lock import read_lockfile
from stackctl.models.render import HostLayout
from stackctl.resources import roles_dir
from tests.support.render_cases import BY_NAME

ROLE = roles_dir() / "stackctl_service"
SUPERVISE = ROLE / "files" / "stackctl-supervise"
MODULE = ROLE / "library" / "stackctl_wait_health.py"
CRASH = ["sh", "-c", "echo boom >&2; exit 3"]


def _load(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wait_module() -> ModuleType:
    return _load("stackctl_wait_health", MODULE)


def _supervise(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SUPERVISE), *args], capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    return done.stdout.strip()


class Supervised:
    """A server started by the real stackctl-supervise, stopped when the test ends."""

    def __init__(self, pid_file: Path, log_file: Path) -> None:
        self.pid_file, self.log_file = pid_file, log_file

    def start(self, argv: list[str]) -> None:
        argv_file = self.pid_file.parent / "argv.json"
        argv_file.parent.mkdir(parents=True, exist_ok=True)
        argv_file.write_text(json.dumps(argv))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        _supervise("ensure", f"--argv-file={argv_file}", f"--pid-file={self.pid_file}",
                   f"--log-file={self.log_file}")  # fmt: skip

    def stop(self) -> None:
        _supervise("stop", f"--pid-file={self.pid_file}")


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    server = Supervised(tmp_path / "run" / "s.pid", tmp_path / "s.log")
    yield server
    server.stop()


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _params(supervised: Supervised) -> dict[str, Any]:
    return {"manager": "supervise", "service": "stackctl-test", "log_lines": 20,
            "pid_file": str(supervised.pid_file), "log_file": str(supervised.log_file)}  # fmt: skip


def test_the_module_gives_up_on_a_crash_loop_within_seconds(
    wait_module: ModuleType, supervised: Supervised
) -> None:
    supervised.start(CRASH)
    url = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(wait_module.GaveUp) as caught:
        wait_module.wait_for_health(url, 300, wait_module.Watch(_params(supervised)).check, 0.5)
    took = time.monotonic() - started
    assert took < 30, f"took {took:.0f}s"  # backoff 1+2+4 s: three short runs, then the flag
    gave_up = caught.value
    assert gave_up.last_exit == 3
    assert gave_up.restarts >= 3
    assert gave_up.message.startswith(f"stopped waiting for {url}/health after ")
    assert "stackctl-test is crash-looping" in gave_up.message
    assert f"restarts: {gave_up.restarts}, last exit code: 3" in gave_up.message
    assert str(supervised.log_file) in gave_up.message
    assert "boom" in gave_up.log_tail
    assert len(gave_up.log_tail) <= 20


def test_the_module_gives_up_when_the_supervisor_is_gone(
    wait_module: ModuleType, supervised: Supervised
) -> None:
    supervised.start(["sleep", "600"])
    supervised.stop()
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(wait_module.GaveUp, match="exited and is not being restarted"):
        wait_module.wait_for_health(url, 300, wait_module.Watch(_params(supervised)).check, 0.5)


def test_the_module_waits_for_a_server_that_answers(
    wait_module: ModuleType, supervised: Supervised, health_server: str
) -> None:
    supervised.start(["sleep", "600"])
    watch = wait_module.Watch(_params(supervised)).check
    assert watch() is None, "a running, unrestarted server is no reason to give up"
    assert wait_module.wait_for_health(health_server, 10, watch, 0.5) < 10


def test_the_module_times_out_without_a_reason_to_give_up(
    wait_module: ModuleType, supervised: Supervised
) -> None:
    supervised.start(["sleep", "600"])
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(wait_module.GaveUp, match=r"no 200 within 1s"):
        wait_module.wait_for_health(url, 1, wait_module.Watch(_params(supervised)).check, 0.2)


def test_the_wording_is_the_same_on_both_sides(wait_module: ModuleType) -> None:
    """The module cannot import stackctl on the managed host, so it carries a copy."""
    supervise = _load("stackctl_supervise", SUPERVISE)
    assert wait_module.CRASH_LOOP_RESTARTS == service.CRASH_LOOP_RESTARTS
    assert service.CRASH_LOOP_RESTARTS == supervise.CRASH_LOOP_RUNS
    for args in [("s", True, 4, 3, "/var/log/s.log"), ("s", False, None, None, "journalctl -u s")]:
        assert wait_module.crash_reason(*args) == service.crash_reason(*args)
    assert wait_module.stopped_waiting("http://h:1", 7.4, "r") == service.stopped_waiting(
        "http://h:1", 7.4, "r"
    )


def test_wait_for_health_gives_up_through_its_callback() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    asked: list[int] = []

    def give_up() -> str | None:
        asked.append(1)
        return "it died\nlog line 1\nlog line 2" if len(asked) == 2 else None

    started = time.monotonic()
    with pytest.raises(ApplyError) as caught:
        wait_for_health(url, timeout=120, give_up=give_up)
    assert time.monotonic() - started < 10
    assert caught.value.message.startswith(f"stopped waiting for {url}/health after ")
    assert caught.value.message.endswith(": it died")
    assert caught.value.details == ["log line 1", "log line 2"]


def test_wait_for_health_returns_on_200_without_asking(health_server: str) -> None:
    wait_for_health(health_server, timeout=10, give_up=lambda: "never asked")


@pytest.mark.skipif(service.has_systemd(), reason="this box runs systemd: service_status asks it")
def test_crash_watch_stops_the_wait_on_a_supervised_crash_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rollback's wait: CrashWatch reads the supervisor's state where the lock's layout says."""
    lock = read_lockfile(BY_NAME["cpu-x86"].lock_path)
    host = HostLayout(state_dir=str(tmp_path / "state"), log_dir=str(tmp_path / "log"))
    server = Supervised(Path(layout.pid_file(lock, host)), Path(layout.log_file(lock, host)))
    server.start(CRASH)
    try:
        watch = service.CrashWatch(lock, host)
        assert watch() is None, "not crash-looping yet: the first run has just started"
        with pytest.raises(ApplyError) as caught:
            wait_for_health(f"http://127.0.0.1:{_closed_port()}", timeout=120, give_up=watch)
    finally:
        server.stop()
    message = caught.value.message
    assert f"{lock.resolved.service} is crash-looping" in message
    assert "last exit code: 3" in message
    assert f"its log: {server.log_file}" in message
    assert "boom" in caught.value.details


@pytest.mark.skipif(service.has_systemd(), reason="this box runs systemd: service_status asks it")
def test_crash_watch_says_exited_once_the_supervisor_is_gone(tmp_path: Path) -> None:
    """No live supervisor behind the pid file: the status says inactive (as systemd's unit
    would) and the wait stops at once, naming the log."""
    lock = read_lockfile(BY_NAME["cpu-x86"].lock_path)
    host = HostLayout(state_dir=str(tmp_path / "state"), log_dir=str(tmp_path / "log"))
    status = service.service_status(lock, host, probe_health=False)
    assert (status.active_state, status.running) == ("inactive", False)
    reason = service.CrashWatch(lock, host)()
    assert reason is not None
    assert "exited and is not being restarted" in reason.splitlines()[0]
    assert layout.log_file(lock, host) in reason.splitlines()[0]


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait for the server to answer /health
      stackctl_wait_health:
        url: "{url}"
        timeout: 300
        service: stackctl-test
        manager: supervise
        pid_file: "{pid_file}"
        log_file: "{log_file}"
"""


def test_the_playbook_failure_carries_the_reason_and_the_log(
    tmp_path: Path, supervised: Supervised
) -> None:
    """Through ansible-playbook and the stackctl_events callback, as apply runs it."""
    supervised.start(CRASH)
    tree = tmp_path / "tree"
    (tree / "library").mkdir(parents=True)
    shutil.copy(MODULE, tree / "library")
    (tree / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
    )
    url = f"http://127.0.0.1:{_closed_port()}"
    (tree / "playbook.yml").write_text(PLAYBOOK.format(
        url=url, pid_file=supervised.pid_file, log_file=supervised.log_file))  # fmt: skip
    result = run_playbook(
        tree, "playbook.yml", extra_vars={"ansible_python_interpreter": sys.executable}
    )
    assert result.failed
    [task] = result.failed_tasks
    assert task.message.startswith(f"stopped waiting for {url}/health after ")
    assert "stackctl-test is crash-looping" in task.message
    assert "last exit code: 3" in task.message
    assert "boom" in task.log_tail
    details = result.failure_details()
    assert details[0] == f"localhost: Wait for the server to answer /health: {task.message}"
    assert "  | boom" in details


def test_the_rendered_tree_ships_the_module_the_role_calls() -> None:
    from stackctl.render import make_environment, render_stack
    from stackctl.resources import templates_dir
    from tests.support.render_cases import golden_lock

    case = BY_NAME["cpu-x86"]
    files = render_stack(golden_lock(case), make_environment(templates_dir()), roles=roles_dir(),
                         lock_name=f"lockfiles/{case.name}.lock.yaml")  # fmt: skip
    by_path = {f.path: f for f in files}
    shipped = by_path["roles/stackctl_service/library/stackctl_wait_health.py"]
    assert shipped.content == MODULE.read_text()
    assert "stackctl_wait_health:" in by_path["roles/stackctl_service/tasks/main.yml"].content
