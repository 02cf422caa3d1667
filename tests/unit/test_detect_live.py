"""Live `stackctl detect` on this machine (CPU-only), checked against /proc and os.cpu_count;
`--collect` writes a bundle that replays to the same answer; `-o` writes a loadable profile."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.cli.hardware_args import load_profile
from stackctl.detect import LiveRunner, detect_hardware
from stackctl.detect.parse_linux import parse_meminfo

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="checks /proc")


def test_live_detect_matches_proc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "detected"
    assert out["cpu"]["arch"] == platform.machine()
    assert out["cpu"]["threads"] == os.cpu_count()
    total, _ = parse_meminfo(Path("/proc/meminfo").read_text())
    assert out["memory"]["total_bytes"] == total
    assert 0 < out["memory"]["available_bytes"] <= total
    assert out["os"]["system"] == "linux"
    assert out["os"]["kernel"] == platform.release()
    assert out["os"]["kernel_cmdline"] == Path("/proc/cmdline").read_text().strip()
    flags = Path("/proc/cpuinfo").read_text()
    if " avx2 " in flags:
        assert "avx2" in out["cpu"]["flags"]
    if not Path("/dev/nvidiactl").exists() and not Path("/dev/kfd").exists():
        assert out["accelerators"] == []


def test_collect_then_replay_gives_the_same_profile(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert main(["detect", "--collect", str(bundle), "-o", str(tmp_path / "live.yaml")]) == 0
    assert (bundle / "SOURCE.md").is_file()
    assert (bundle / "fs" / "proc" / "meminfo").is_file()
    live = load_profile(tmp_path / "live.yaml")
    assert main(["detect", "--from", str(bundle), "-o", str(tmp_path / "replay.yaml")]) == 0
    replay = load_profile(tmp_path / "replay.yaml")
    keep = {"cpu", "accelerators", "os"}
    assert live.model_dump(include=keep) == replay.model_dump(include=keep)
    assert live.memory.total_bytes == replay.memory.total_bytes


def test_collect_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    assert main(["detect", "--collect", str(tmp_path)]) == 2
    assert (tmp_path / "x").read_text() == "keep me"


def test_output_file_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "box.yaml"
    target.write_text("old")
    assert main(["detect", "-o", str(target)]) == 0
    assert load_profile(target).source == "detected"
    assert [p.name for p in tmp_path.iterdir()] == ["box.yaml"]  # no temp file left behind


def test_live_runner_absent_command_is_none() -> None:
    runner = LiveRunner()
    assert runner.run("nvidia-smi.txt") is None or Path("/dev/nvidiactl").exists()
    assert runner.run("no-such-probe") is None
    assert runner.read_file("/no/such/file") is None
    assert detect_hardware(runner).name == (platform.node() or "localhost")
