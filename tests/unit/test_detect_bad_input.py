"""Odd bundles: garbage, empty, binary, truncated files and a misspelt kernel parameter give a
result plus warnings, exit 0; a missing bundle directory is a clear error, exit 2. Every odd
bundle is a corrupted copy of a real one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.detect import BundleRunner, detect_hardware

HW = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hw"
BUNDLES = sorted(p for p in HW.glob("*") if (p / "expected.json").is_file())


def _copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(HW / name, dest)
    return dest


def _data_files(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file() and p.parent != bundle)


def _run(bundle: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["detect", "--from", str(bundle), "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
@pytest.mark.parametrize("damage", ["truncate", "empty", "binary", "garbage"])
def test_damaged_bundle_gives_result_with_warnings(
    bundle: Path, damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = _copy(tmp_path, bundle.name)
    for f in _data_files(dest):
        data = f.read_bytes()
        if damage == "truncate":
            f.write_bytes(data[: len(data) // 3])
        elif damage == "empty":
            f.write_bytes(b"")
        elif damage == "binary":
            f.write_bytes(bytes(range(256)) * 4 + data[:100])
        else:  # the real text with its lines shuffled out of order and cut mid-line
            lines = data.splitlines(keepends=True)
            f.write_bytes(b"".join(lines[1::2] + lines[::2])[:-7])
    out = _run(dest, capsys)
    assert out["source"] == "bundle"
    if damage in {"empty", "binary"}:
        assert out["accelerators"] == []
        assert out["warnings"], "a damaged bundle must say so"


def test_truncated_xml_keeps_driver_and_warns(tmp_path: Path) -> None:
    dest = _copy(tmp_path, "a100-sxm4-80gb-mig")
    xml = dest / "cmd" / "nvidia-smi-q.xml"
    xml.write_text(xml.read_text()[:5000])
    prof = detect_hardware(BundleRunner(dest))
    assert prof.accelerators == []
    assert any("not well-formed" in w for w in prof.warnings)


def test_truncated_table_keeps_complete_rows(tmp_path: Path) -> None:
    dest = _copy(tmp_path, "rtx4090-x8")
    table = dest / "cmd" / "nvidia-smi.txt"
    lines = table.read_text().splitlines(keepends=True)
    table.write_text("".join(lines[:20]))
    prof = detect_hardware(BundleRunner(dest))
    assert 1 <= len(prof.accelerators) < 8
    assert all(a.driver_version == "550.127.05" for a in prof.accelerators)


def test_misspelt_gtt_parameter_is_reported(tmp_path: Path) -> None:
    # The rog-flow bundle with the poster's cmdline, the ttm knob misspelt as many users do.
    dest = _copy(tmp_path, "strix-halo-rog-flow-z13-gtt96")
    cmdline = dest / "fs" / "proc" / "cmdline"
    cmdline.parent.mkdir(parents=True)
    cmdline.write_text("iommu.passthrough=0 amdgpu.gtt_size=98304 ttm.page_pool_size=25165824\n")
    prof = detect_hardware(BundleRunner(dest))
    assert any("kernel ignores 'amdgpu.gtt_size'" in w for w in prof.warnings)
    assert prof.os.cmdline_gtt_bytes is None
    assert prof.os.system == "linux"


def test_cmdline_pages_limit_matches_sysfs(tmp_path: Path) -> None:
    dest = _copy(tmp_path, "strix-halo-rog-flow-z13-gtt96")
    cmdline = dest / "fs" / "proc" / "cmdline"
    cmdline.parent.mkdir(parents=True)
    cmdline.write_text("iommu.passthrough=0 ttm.pages_limit=25165824 ttm.page_pool_size=25165824\n")
    prof = detect_hardware(BundleRunner(dest))
    assert prof.os.ttm_pages_limit == 25165824
    assert prof.os.cmdline_gtt_bytes == prof.accelerators[0].gtt_bytes == 103079215104
    assert not any("command line asks" in w for w in prof.warnings)


def test_apu_named_by_cpu_gets_gtt_budget(tmp_path: Path) -> None:
    # sysfs pools from the rog-flow bundle plus the Strix Halo lscpu line from the gmktec one.
    dest = _copy(tmp_path, "strix-halo-rog-flow-z13-gtt96")
    (dest / "cmd").mkdir()
    shutil.copy(HW / "strix-halo-gmktec-rocm71" / "cmd" / "lscpu.txt", dest / "cmd" / "lscpu.txt")
    acc = detect_hardware(BundleRunner(dest)).accelerators[0]
    assert acc.integrated is True
    assert acc.unified is True
    assert acc.memory_budget_bytes == 103079215104
    assert acc.budget_source == "mem_info_gtt_total"
    assert acc.arch == "gfx1151"


def test_unknown_gpu_warns_not_guesses(tmp_path: Path) -> None:
    dest = _copy(tmp_path, "rtx4090-x8")
    table = dest / "cmd" / "nvidia-smi.txt"
    table.write_text(table.read_text().replace("GeForce RTX 4090", "GeForce RTX 4095"))
    prof = detect_hardware(BundleRunner(dest))
    assert len(prof.accelerators) == 8
    assert all(a.bandwidth_gbps is None and a.arch is None for a in prof.accelerators)
    assert any("not in catalog/hardware.yaml" in w for w in prof.warnings)


def test_a_variant_is_its_own_card_not_a_borrowed_one(tmp_path: Path) -> None:
    dest = _copy(tmp_path, "rtx4090-x8")
    table = dest / "cmd" / "nvidia-smi.txt"
    table.write_text(table.read_text().replace("GeForce RTX 4090", "GeForce RTX 4090 D"))
    prof = detect_hardware(BundleRunner(dest))
    assert {a.chip for a in prof.accelerators} == {"rtx-4090-d"}
    assert all(a.peak_tflops_fp16 != 165.2 for a in prof.accelerators)


def test_missing_bundle_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--from", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such bundle directory" in err


def test_bundle_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["detect", "--from", str(f)]) == 2
