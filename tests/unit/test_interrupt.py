"""Interrupted work, with real processes: a render killed at any moment leaves the old tree or the
new one (never half of one) and a rerun converges; a playbook run stops with stackctl on SIGTERM
and on SIGKILL (no orphaned ansible-playbook racing the rerun)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "lockfiles" / "cpu-x86.lock.yaml"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _render(out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stackctl", "render", str(LOCK), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def test_killed_render_leaves_old_or_new_tree_and_rerun_converges(tmp_path: Path) -> None:
    out = tmp_path / "tree"
    assert _render(out).wait(timeout=120) == 0
    expected = _tree(out)
    (out / "stale-marker").write_text("from the previous render")
    previous = _tree(out)
    outcomes = set()
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.2, 2.6):
        proc = _render(out)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _tree(out) if out.exists() else None
        assert now in (None, expected, previous), f"half-written tree after {delay}s"
        outcomes.add("new" if now == expected else "old" if now == previous else "none")
        if now == expected:
            (out / "stale-marker").write_text("from the previous render")
    assert _render(out).wait(timeout=120) == 0
    assert _tree(out) == expected
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "tree"]
    assert leftovers == [], "staging folders of killed renders are cleared by the rerun"
    print(f"kill outcomes seen: {sorted(outcomes)}")


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a long step (an engine build, a download)
      ansible.builtin.command: sleep {marker}
"""

RUNNER = """
import signal, sys
from pathlib import Path
from stackctl.apply import run_playbook
from stackctl.cli import _interrupt
signal.signal(signal.SIGTERM, _interrupt)
try:
    run_playbook(Path(sys.argv[1]), "playbook.yml",
                 extra_vars={{"ansible_python_interpreter": sys.executable}})
except KeyboardInterrupt:
    sys.exit(130)
"""


def _pids_with(needle: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(proc.name))
    return found


def _wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_playbook_stops_with_stackctl(tmp_path: Path, sig: signal.Signals) -> None:
    marker = str(3000 + os.getpid() % 500 + sig)  # a sleep length no other process uses
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
    )
    (tmp_path / "playbook.yml").write_text(PLAYBOOK.format(marker=marker))
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(RUNNER.format()), str(tmp_path)],
        stdin=subprocess.DEVNULL,
    )
    try:
        assert _wait_until(lambda: _pids_with(f"sleep {marker}"), 60), "the step never started"
        assert _pids_with(str(tmp_path / "playbook.yml")), "ansible-playbook is running"
        runner.send_signal(sig)
        code = runner.wait(timeout=60)
        assert code == (130 if sig == signal.SIGTERM else -signal.SIGKILL)
        assert _wait_until(lambda: not _pids_with(str(tmp_path / "playbook.yml")), 45), (
            "ansible-playbook outlived stackctl"
        )
        assert _wait_until(lambda: not _pids_with(f"sleep {marker}"), 45), (
            "the playbook's step outlived it"
        )
    finally:
        runner.kill()
        for pid in _pids_with(f"sleep {marker}"):
            os.kill(pid, signal.SIGKILL)
