"""bench, check-output, calibrate, report and the tuning file through the real CLI, offline:
the store, the lock's hashed tuning input, import of bad rows, a store from a newer stackctl,
and an endpoint that is down. The e2e test measures a real server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stackctl.bench.store import STORE_SCHEMA
from stackctl.bench.tuning import read_tuning
from stackctl.cli import main
from stackctl.lock import read_lockfile

DATA = Path(__file__).resolve().parent.parent / "data" / "bench"


@pytest.fixture
def store(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(in_tmp / "xdg"))
    return in_tmp / "xdg" / "stackctl" / "bench.sqlite"


@pytest.fixture
def locked(store: Path, cpu_profile: Path) -> Path:
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    return Path("lockfiles/tiny-cpu.cpu-x86-2core.lock.yaml")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict[str, Any]:
    assert main([*argv, "--json"]) == code
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 1
    return data


def test_import_keeps_good_rows_and_lists_bad_ones_by_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _json(capsys, ["bench", "import", str(DATA / "bad-rows.csv")], code=1)
    assert out["imported"] == 2
    assert out["rejected"] == [
        {"line": 3, "reason": "avg_ts 'fast' is not a positive rate"},
        {"line": 5, "reason": "n_prompt and n_gen are both 0"},
    ]
    exported = _json(capsys, ["bench", "export"])
    assert exported["rows"] == []  # export carries our own measurements, not imports


def test_markdown_without_hardware_is_refused_unless_named(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = str(DATA / "llama-bench.md")
    out = _json(capsys, ["bench", "import", md], code=1)
    assert out["imported"] == 0
    assert all("names no hardware" in r["reason"] for r in out["rejected"])
    out = _json(capsys, ["bench", "import", md, "--cpu", "Ryzen 9 7950X"])
    assert out["imported"] == 4
    assert out["rejected"] == []


def test_newer_store_is_refused_and_left_alone(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.parent.mkdir(parents=True)
    with sqlite3.connect(store) as conn:
        conn.execute(f"PRAGMA user_version = {STORE_SCHEMA + 1}")
    before = store.read_bytes()
    assert main(["bench", "import", str(DATA / "bad-rows.csv")]) == 2
    err = capsys.readouterr().err
    assert "newer than this stackctl reads" in err
    assert store.read_bytes() == before


def test_endpoint_down_is_reported_and_marked_partial(
    locked: Path, capsys: pytest.CaptureFixture[str], cpu_profile: Path
) -> None:
    out = _json(
        capsys,
        ["bench", str(locked), "--url", "http://127.0.0.1:9", "--depths", "0", "--clients", "1"],
        code=1,
    )
    assert out["partial"] is True
    point = out["results"][0]
    assert point["partial"] is True
    assert point["runs"] == 0
    assert "Connection refused" in point["error"]


def test_check_output_fails_loudly_when_endpoint_is_down(
    locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _json(capsys, ["check-output", str(locked), "--url", "http://127.0.0.1:9"], code=1)
    assert out["passed"] is False
    assert all("request failed" in c["reason"] for c in out["cases"])


def test_tuning_file_is_a_hashed_lock_input(
    locked: Path, capsys: pytest.CaptureFixture[str], cpu_profile: Path
) -> None:
    """A recorded sweep's file: lock --check notices it, lock applies its winning flags."""
    tuning = Path("lockfiles/tiny-cpu.cpu-x86-2core.tuning.yaml")
    recorded = read_tuning(DATA / "tuning.yaml")
    tuning.write_text((DATA / "tuning.yaml").read_text())
    check = ["lock", "--check", str(locked), "--hardware", str(cpu_profile)]
    assert main(check) == 3
    assert f"tuning {tuning.as_posix()} was written" in capsys.readouterr().out
    assert main(["lock", "tiny-cpu", "--hardware", str(cpu_profile)]) == 0
    lock = read_lockfile(locked)
    args = lock.resolved.runtime.server_args
    winner = recorded.winner
    if winner.threads is not None:
        assert args[args.index("--threads") + 1] == str(winner.threads)
    if winner.ubatch is not None:
        assert args[args.index("--ubatch-size") + 1] == str(winner.ubatch)
    if winner.type_k is not None:
        assert args[args.index("--cache-type-k") + 1] == winner.type_k
    assert any(r.startswith("tuned by a sweep") for r in lock.resolved.reasons)
    assert main(check) == 0
    capsys.readouterr()
    tuning.write_text(tuning.read_text() + "# edited\n")
    assert main(check) == 3
    assert "changed since the lock was made" in capsys.readouterr().out
