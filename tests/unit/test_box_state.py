"""State on the box, for real: the applied lock recorded under the state dir, the state lock
held by another process, preflight against a real listening port, a real full tmpfs, the real
/proc/meminfo and PATH, and day-two commands run from an unrelated folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.errors import StateBusyError
from stackctl.lock import content_hash, read_lockfile
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.preflight import check_disk, check_port, check_ram, check_toolchain
from stackctl.resources import stacks_dir
from stackctl.state import (
    PREVIOUS,
    STATE_ENV,
    applied_lock,
    record_applied,
    state_lock,
)

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "lockfiles" / "cpu-x86.lock.yaml"


@pytest.fixture
def lock() -> Lockfile:
    return read_lockfile(LOCK)


def _with_port(lock: Lockfile, port: int) -> Lockfile:
    """The same lock serving on another port, re-hashed as `stackctl lock` would."""
    runtime = lock.resolved.runtime.model_copy(update={"port": port})
    resolved = lock.resolved.model_copy(update={"runtime": runtime})
    return lock.model_copy(
        update={"resolved": resolved, "content_hash": content_hash(lock.inputs, resolved)}
    )


@pytest.fixture
def listener() -> Iterator[int]:
    """A real program listening on a loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def holder(state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the state dir's lock, as a running apply would."""
    code = (
        "import sys, time\n"
        "from stackctl.state import state_lock\n"
        "with state_lock('apply'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, STATE_ENV: str(state_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_apply_is_refused_while_one_runs(holder: subprocess.Popen[str]) -> None:
    with pytest.raises(StateBusyError, match=f"pid {holder.pid} \\(apply\\)"), state_lock("x"):
        pass


def test_a_killed_apply_leaves_no_stale_lock(holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with state_lock("apply"):
        pass


def test_apply_cli_refuses_while_locked(
    holder: subprocess.Popen[str],
    in_tmp: Path,
    cpu_profile: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["apply", "tiny-cpu", "--hardware", str(cpu_profile), "-y"]) == 1
    assert f"error[state-busy]: {os.environ[STATE_ENV]} is locked by pid {holder.pid}" in (
        capsys.readouterr().err
    )
    assert not list(in_tmp.iterdir()), "a refused apply writes nothing"


def test_applied_lock_is_recorded_and_previous_kept(lock: Lockfile, tmp_path: Path) -> None:
    record_applied(lock, lock_path=LOCK, tree=tmp_path)
    assert applied_lock() == lock
    assert applied_lock(PREVIOUS) is None
    other = _with_port(lock, 8099)
    record_applied(other, lock_path=LOCK, tree=tmp_path)
    assert applied_lock() == other
    assert applied_lock(PREVIOUS) == lock


def test_day_two_commands_work_from_any_folder(
    lock: Lockfile, in_tmp: Path, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: `status` from a folder without the lockfile uses the box's record."""
    recorded = _with_port(lock, listener)
    record_applied(recorded, lock_path=LOCK, tree=in_tmp)
    capsys.readouterr()
    assert main(["status", "--json"]) == 1  # something listens, but it is no llama-server
    status = json.loads(capsys.readouterr().out)
    assert status["service"] == lock.resolved.service
    assert status["url"] == f"http://127.0.0.1:{listener}"
    assert main(["status", "tiny-cpu", "--json", "--hardware", str(REPO / "nope.yaml")]) == 2


def test_logs_show_the_apply_log(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stackctl.cli.apply_state import apply_session

    def failing_apply() -> None:
        with apply_session("apply") as log:
            log.on_event(
                {"event": "result", "status": "failed", "host": "localhost", "reason": "HTTP 404"}
            )
            raise StateBusyError("stand-in failure")

    with pytest.raises(StateBusyError):
        failing_apply()
    assert main(["logs", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "localhost: failed: HTTP 404" in out
    assert "FAILED error[state-busy]: stand-in failure" in out


# --- preflight ----------------------------------------------------------------------------


def test_port_in_use_is_one_clear_problem(lock: Lockfile, listener: int) -> None:
    taken = _with_port(lock, listener)
    [problem] = check_port(taken, ours_running=False)
    assert problem.startswith(f"port: 127.0.0.1:{listener} is in use by another program")
    assert check_port(taken, ours_running=True) == []


def test_ram_against_the_prediction(lock: Lockfile) -> None:
    assert check_ram(lock, running_pid=None) == []  # 0.8 GB on this box
    predicted = lock.resolved.predicted.model_copy(update={"memory_total_bytes": 1 << 50})
    huge = lock.model_copy(
        update={"resolved": lock.resolved.model_copy(update={"predicted": predicted})}
    )
    [problem] = check_ram(huge, running_pid=None)
    assert problem.startswith("ram: the stack is predicted to use 1048576.00 GiB")


def test_toolchain_missing(lock: Lockfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = HostLayout(prefix=str(tmp_path / "opt"), cache_dir=str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [problem] = check_toolchain(lock, layout)
    assert "cmake" in problem
    assert "C++ compiler" in problem


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root, as apply does)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_disk_space_for_model_and_build(lock: Lockfile, tiny_fs: Path) -> None:
    layout = HostLayout(
        prefix=str(tiny_fs / "opt"), cache_dir=str(tiny_fs / "cache"), state_dir=str(tiny_fs)
    )
    [problem] = check_disk(lock, layout)
    assert problem.startswith(f"disk: {tiny_fs}/models/")
    assert "needs 1.24 GiB free for the model and the build, has 0.00 GiB" in problem


def test_render_on_a_full_disk_names_path_and_need(
    tiny_fs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tiny_fs / "filler").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))
    out = tiny_fs / "tree"
    assert main(["render", str(LOCK), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error[disk-full]: {out}: no space left on the device: writing it needs" in err
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler"], "nothing half-written"


def test_apply_preflight_refuses_before_any_write(
    in_tmp: Path,
    cpu_profile: Path,
    listener: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_run() -> str:
        raise AssertionError("preflight let apply reach ansible-playbook")

    monkeypatch.setattr("stackctl.apply.ansible_playbook_path", must_not_run)
    stack = in_tmp / "tiny-cpu.yaml"
    shutil.copy(stacks_dir() / "tiny-cpu.yaml", stack)
    stack.write_text(stack.read_text().replace("port: 8080", f"port: {listener}"))
    before = sorted(in_tmp.rglob("*"))
    assert main(["apply", str(stack), "--hardware", str(cpu_profile), "-y"]) == 1
    err = capsys.readouterr().err
    assert "error[preflight-failed]: this box cannot take tiny-cpu yet" in err
    assert f"port: 127.0.0.1:{listener} is in use" in err
    assert sorted(in_tmp.rglob("*")) == before


def test_destroy_forgets_the_current_lock(lock: Lockfile, tmp_path: Path) -> None:
    from stackctl.state import forget_applied

    record_applied(lock, lock_path=LOCK, tree=tmp_path)
    forget_applied(lock)
    assert applied_lock() is None
    assert applied_lock(PREVIOUS) == lock
