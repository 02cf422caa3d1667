"""Every bundle in ../shared/fixtures/hw and tests/data/hw is a test case: `detect --from` must
match expected.json (FORMAT.md: bytes within 1 %, *_contains case-insensitive, absent keys
unchecked). tests/data/hw holds further real outputs owners posted publicly (SOURCE.md each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackctl.cli import main
from stackctl.detect import BundleRunner, detect_hardware

HW = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hw"
OURS = Path(__file__).resolve().parents[1] / "data" / "hw"
SHARED_BUNDLES = sorted(p for p in HW.glob("*") if (p / "expected.json").is_file())
OUR_BUNDLES = sorted(p for p in OURS.glob("*") if (p / "expected.json").is_file())
BUNDLES = SHARED_BUNDLES + OUR_BUNDLES


def _check(path: str, want: Any, got: Any, problems: list[str]) -> None:
    key = path.rsplit(".", 1)[-1]
    if key.endswith("_contains"):
        if got is None or str(want).lower() not in str(got).lower():
            problems.append(f"{path}: {got!r} does not contain {want!r}")
    elif key == "flags_include":
        missing = sorted(set(want) - set(got or []))
        if missing:
            problems.append(f"{path}: missing {missing}")
    elif key.endswith("_bytes") and isinstance(want, int):
        if got is None or abs(got - want) > want / 100:
            problems.append(f"{path}: {got!r} not within 1 % of {want}")
    elif got != want:
        problems.append(f"{path}: {got!r} != {want!r}")


def compare(expected: dict[str, Any], out: dict[str, Any]) -> list[str]:
    """FORMAT.md's mapping of expected.json onto `detect --json`."""
    problems: list[str] = []
    for key, want in expected.get("cpu", {}).items():
        field = key.removesuffix("_contains").replace("flags_include", "flags")
        _check(f"cpu.{key}", want, out["cpu"].get(field), problems)
    if "memory_total_bytes" in expected:
        _check(
            "memory_total_bytes",
            expected["memory_total_bytes"],
            out["memory"]["total_bytes"],
            problems,
        )
    accels = out["accelerators"]
    if "accelerator_count" in expected and len(accels) != expected["accelerator_count"]:
        problems.append(f"accelerator_count: {len(accels)} != {expected['accelerator_count']}")
    for i, want_acc in enumerate(expected.get("accelerators", [])):
        if i >= len(accels):
            problems.append(f"accelerators[{i}]: missing")
            continue
        for key, want in want_acc.items():
            field = key.removesuffix("_contains")
            _check(f"accelerators[{i}].{key}", want, accels[i].get(field), problems)
    return problems


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_bundle_matches_expected_via_cli(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["detect", "--from", str(bundle), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["schema_version"] == 1
    assert out["source"] == "bundle"
    expected = json.loads((bundle / "expected.json").read_text())
    assert compare(expected, out) == []


def test_fixture_folder_is_present() -> None:
    assert len(SHARED_BUNDLES) >= 12, f"expected the shared bundles under {HW}"
    assert len(OUR_BUNDLES) >= 15
    for bundle in OUR_BUNDLES:
        assert "https://" in (bundle / "SOURCE.md").read_text(), bundle.name


def _detect(name: str) -> dict[str, Any]:
    return detect_hardware(BundleRunner(HW / name)).model_dump(mode="json")


def test_a100_mig_warns_about_undescribed_gpus() -> None:
    out = _detect("a100-sxm4-80gb-mig")
    acc = out["accelerators"][0]
    assert acc["mig_enabled"] is True
    assert acc["mig_instances"] == 4
    assert acc["budget_source"] == "one MIG instance"
    assert any("4 attached GPUs" in w for w in out["warnings"])


def test_strix_halo_npu_not_counted_and_budget_from_pool() -> None:
    out = _detect("strix-halo-gmktec-rocm71")
    assert [a["arch"] for a in out["accelerators"]] == ["gfx1151"]
    acc = out["accelerators"][0]
    assert acc["integrated"] is True
    assert acc["budget_source"] == "rocminfo GPU pool"
    assert acc["bandwidth_gbps"] == 256
    assert any("aie2" in w for w in out["warnings"])
    assert out["cpu"]["chip"] == "ryzen-ai-max-plus-395"


def test_strix_halo_sysfs_only_reports_both_pools_and_no_guessed_budget() -> None:
    out = _detect("strix-halo-rog-flow-z13-gtt96")
    acc = out["accelerators"][0]
    assert acc["gtt_bytes"] == 103079215104
    assert acc["carveout_bytes"] == 4294967296
    assert acc["memory_budget_bytes"] is None
    assert any("integrated or discrete" in w for w in out["warnings"])


def test_dgx_spark_unified_without_host_memory_warns() -> None:
    out = _detect("dgx-spark-gb10-drv580.126")
    acc = out["accelerators"][0]
    assert acc["unified"] is True
    assert acc["memory_bytes"] is None
    assert acc["pci_bus_id"] == "000f:01:00.0"
    assert any("system memory" in w for w in out["warnings"])


def test_apple_default_share_is_flagged_as_default() -> None:
    out = _detect("apple-m1-pro-macbookpro18-1")
    assert out["accelerators"][0]["memory_budget_bytes"] is not None
    assert "accelerators.0.memory_budget_bytes" in out["defaults"]
    assert out["cpu"]["performance_cores"] == 8
    assert out["cpu"]["efficiency_cores"] == 2
    assert out["os"]["system"] == "darwin"


def test_wired_limit_is_read_not_defaulted() -> None:
    out = _detect("apple-m1-max-32gb-wiredlimit")
    assert out["defaults"] == []
    assert out["accelerators"][0]["budget_source"] == "iogpu.wired_limit_mb"


def test_mixed_generations_keep_their_own_arch() -> None:
    out = _detect("titanv-plus-rtx5880ada")
    assert [a["compute_capability"] for a in out["accelerators"]] == ["7.0", "8.9"]
    assert out["accelerators"][0]["uuid"] == "GPU-b5169cef-2205-c30e-f2b3-220cfa14bafd"


def test_mi300x_merges_rocminfo_and_rocm_smi_by_bus_id() -> None:
    out = _detect("mi300x-x4-epyc9474f")
    buses = [a["pci_bus_id"] for a in out["accelerators"]]
    assert buses == ["0000:26:00.0", "0000:46:00.0", "0000:65:00.0", "0000:85:00.0"]
    assert out["cpu"]["arch"] == "x86_64"
    # an EPYC 9474F is a Genoa part: its core design carries a published per-core bandwidth
    assert (out["cpu"]["chip"], out["cpu"]["core"]) == ("epyc-9474f", "zen4-server")


def test_human_summary_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--from", str(HW / "rtx4090-x8")]) == 0
    text = capsys.readouterr().out
    assert text.count("RTX 4090") == 8
