"""A bandwidth measured on a CPU with int8 dot-product instructions takes its own decode
efficiency, by how llama.cpp runs the dot products (devices.dot_path): with AMX, the recorded
Xeon read 0.68-0.93 of the probe's stream (VNNI); with VNNI and no AMX, an AMD Zen 4 VM and an
Intel Xeon VM read 0.45-0.81 (VNNI-AMD, VNNI-INTEL); the AVX2 EPYC VM 0.40-0.58 (M-CPU)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from stackctl.detect import BundleRunner, detect_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.devices import dot_path
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

ROOT = Path(__file__).resolve().parents[2]
SPR = ROOT / "../shared/fixtures/hw/xeon-platinum-8462yplus-spr"  # flags include avx512_vnni
RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni.json"
AMD_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni_amd.json"
INTEL_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni_intel.json"
CATALOG = load_estimate_catalog(catalog_dir())
CPU = CATALOG.backends.backends["cpu"]
REQUEST = EstimateRequest(model="gemma-3-270m", quant="Q4_K_M", backend="cpu", ctx=4096, threads=2)


def _box(
    flags: list[str], source: str = "measured", vendor: str = "GenuineIntel"
) -> HardwareProfile:
    box = detect_hardware(BundleRunner(SPR))
    update = {"flags": flags, "bandwidth_gbps": 22.0, "bandwidth_source": source, "vendor": vendor}
    cpu = box.cpu.model_copy(update=update)
    return box.model_copy(update={"cpu": cpu})


def _efficiencies(*runs: Path) -> list[float]:
    return [r["efficiency"] for run in runs for r in json.loads(run.read_text("utf-8"))["rows"]]


def test_the_recorded_boxes_are_what_their_figures_say() -> None:
    amx, amd, intel = (json.loads(p.read_text("utf-8")) for p in (RUN, AMD_RUN, INTEL_RUN))
    assert "amx_int8" in amx["flags"]
    for run in (amd, intel):
        assert "avx512_vnni" in run["flags"]
        assert "amx_int8" not in run["flags"]
    assert amd["cpu"].startswith("AMD")
    assert intel["cpu"].startswith("Intel")
    assert "avx512_vnni" in detect_hardware(BundleRunner(SPR)).cpu.flags


@pytest.mark.parametrize(
    ("runs", "field"),
    [((RUN,), "measured_amx_decode"), ((AMD_RUN, INTEL_RUN), "measured_vnni_decode")],
)
def test_the_catalog_figures_are_the_recorded_runs(runs: tuple[Path, ...], field: str) -> None:
    effs = _efficiencies(*runs)
    assert getattr(CPU, f"{field}_efficiency") == round(statistics.median(effs), 2)
    low, high = getattr(CPU, f"{field}_range")
    assert low <= min(effs)
    assert max(effs) <= high


def test_each_dot_path_decodes_at_its_own_share_of_the_measured_stream() -> None:
    flags = detect_hardware(BundleRunner(SPR)).cpu.flags  # Sapphire Rapids: VNNI and AMX
    assert dot_path(flags) == "amx"
    vnni = [f for f in flags if not f.startswith("amx")]
    plain = [f for f in vnni if f not in ("avx512_vnni", "avx_vnni")]
    runs = {path: estimate(REQUEST, _box(f), catalog=CATALOG) for path, f in
            (("amx", flags), ("vnni", vnni), ("", plain))}  # fmt: skip
    shares = {
        "amx": CPU.measured_amx_decode_efficiency,
        "vnni": CPU.measured_vnni_decode_efficiency,
        "": CPU.measured_decode_efficiency,
    }
    for path, run in runs.items():
        ratio = (shares[path] or 0) / (shares[""] or 1)
        # the weight read dominates a depth-0 token: the figures follow the efficiencies closely
        assert abs(run.speed.tg_tps / runs[""].speed.tg_tps / ratio - 1) < 0.05
    assert any("AMX CPU's efficiency spread" in b for b in runs["amx"].basis)
    assert any("int8 dot-product CPU's efficiency spread" in b for b in runs["vnni"].basis)
    assert not any("int8 dot-product" in b or "AMX" in b for b in runs[""].basis)
    low, high = CPU.measured_amx_decode_range
    speed = runs["amx"].speed
    assert speed.tg_tps_range[1] / speed.tg_tps_range[0] < high / low * 1.05


def test_a_spec_bandwidth_ignores_the_measured_figures() -> None:
    flags = detect_hardware(BundleRunner(SPR)).cpu.flags
    spec = estimate(REQUEST, _box(flags, source="catalog"), catalog=CATALOG)
    measured = estimate(REQUEST, _box(flags), catalog=CATALOG)
    assert spec.speed.tg_tps != measured.speed.tg_tps
    assert not any("AMX" in b for b in spec.basis)


def test_which_dot_path_a_cpu_takes() -> None:
    assert dot_path(["avx2", "avx512_vnni", "amx_int8", "amx_tile"]) == "amx"
    assert dot_path(["avx2", "avx512_vnni"]) == "vnni"  # Zen 4, or a Xeon VM without AMX
    assert dot_path(["avx2", "avx_vnni"]) == "vnni"  # AVX-VNNI: the VEX form
    assert dot_path(["avx2"]) == ""  # no int8 dot products at all
