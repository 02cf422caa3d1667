"""The detect bandwidth probe on this machine: measured, rounded, cached per box, skipped with
--no-probe, kept in a collected bundle and replayed from it without probing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackctl.cli import main
from stackctl.detect import bandwidth_probe as bw

HW = Path(__file__).resolve().parents[2] / "../shared/fixtures/hw"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _detect(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["detect", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def _no_probe(*_: object, **__: object) -> float:
    raise AssertionError("probed where it must not")


def test_round_to_two_significant_figures() -> None:
    assert bw.round_sig(16.34) == 16.0
    assert bw.round_sig(6.11) == 6.1
    assert bw.round_sig(123.4) == 120.0
    assert bw.round_sig(0.0) == 0.0


def test_the_probe_reads_a_real_rate() -> None:
    rate = bw.measure_read_gbps(1, seconds=0.2)
    assert 0.1 < rate < 2000  # a real memory, not a cache or a clock artefact


def test_detect_measures_once_then_uses_the_cache(
    cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _detect([], capsys)["cpu"]
    assert first["bandwidth_source"] == "measured"
    assert first["bandwidth_gbps"] == bw.round_sig(first["bandwidth_gbps"])
    files = list((cache / "stackctl" / "bandwidth").glob("*.json"))
    assert len(files) == 1
    monkeypatch.setattr(bw, "measure_read_gbps", _no_probe)
    again = _detect([], capsys)["cpu"]
    assert again["bandwidth_gbps"] == first["bandwidth_gbps"]


def test_no_probe_skips_it(
    cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bw, "measure_read_gbps", _no_probe)
    cpu = _detect(["--no-probe"], capsys)["cpu"]
    assert cpu["bandwidth_source"] != "measured"
    assert not (cache / "stackctl" / "bandwidth").exists()


def test_collect_keeps_the_figure_and_from_replays_it_without_probing(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    live = _detect(["--collect", str(bundle)], capsys)
    record = json.loads((bundle / bw.PROBE_FILE).read_text(encoding="utf-8"))
    assert record["gbps"] == live["cpu"]["bandwidth_gbps"]
    monkeypatch.setattr(bw, "measure_read_gbps", _no_probe)
    replayed = _detect(["--from", str(bundle)], capsys)
    assert replayed["cpu"]["bandwidth_gbps"] == live["cpu"]["bandwidth_gbps"]
    assert replayed["cpu"]["bandwidth_source"] == "measured"


def test_a_bundle_without_the_file_is_not_probed(
    cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bw, "measure_read_gbps", _no_probe)
    cpu = _detect(["--from", str(HW / "rtx4090-x8")], capsys)["cpu"]
    assert cpu["bandwidth_source"] != "measured"


def test_a_probed_cpu_is_no_longer_said_to_have_an_unknown_bandwidth(cpu_profile: Path) -> None:
    from stackctl.cli.hardware_args import load_profile

    box = load_profile(cpu_profile)
    unknown = f"CPU '{box.cpu.model}' is not in catalog/hardware.yaml: {bw.UNKNOWN_BANDWIDTH}"
    probed = bw.with_bandwidth(box.model_copy(update={"warnings": [unknown]}), {"gbps": 21.0})
    assert probed.cpu.bandwidth_source == "measured"
    assert probed.warnings == [
        f"CPU '{box.cpu.model}' is not in catalog/hardware.yaml: memory bandwidth measured by "
        "the probe: 21 GB/s"
    ]
