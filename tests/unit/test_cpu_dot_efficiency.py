"""A bandwidth measured on a CPU with int8 dot-product instructions (VNNI) takes its own decode
efficiency: the recorded box (AVX512-VNNI Xeon) read 0.68-0.93 of the probe's stream, the AVX2
EPYC VM 0.40-0.58 (catalog/backends.yaml VNNI, M-CPU). An AMD Zen 4 EPYC VM, whose AVX-512 runs
on 256-bit units, read 0.47-0.81 (VNNI-AMD): its own figure."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from stackctl.detect import BundleRunner, detect_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.devices import half_width_dot
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

ROOT = Path(__file__).resolve().parents[2]
SPR = ROOT / "../shared/fixtures/hw/xeon-platinum-8462yplus-spr"  # flags include avx512_vnni
RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni.json"
AMD_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni_amd.json"
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


def test_the_recorded_box_has_vnni_and_the_fixture_too() -> None:
    run = json.loads(RUN.read_text(encoding="utf-8"))
    assert "avx512_vnni" in run["flags"]
    assert "avx512_vnni" in detect_hardware(BundleRunner(SPR)).cpu.flags


@pytest.mark.parametrize(
    ("run_file", "field"),
    [(RUN, "measured_dot_decode"), (AMD_RUN, "measured_half_dot_decode")],
)
def test_the_catalog_figures_are_the_recorded_runs(run_file: Path, field: str) -> None:
    effs = [r["efficiency"] for r in json.loads(run_file.read_text(encoding="utf-8"))["rows"]]
    assert getattr(CPU, f"{field}_efficiency") == round(statistics.median(effs), 2)
    low, high = getattr(CPU, f"{field}_range")
    assert low <= min(effs)
    assert max(effs) <= high


def test_a_vnni_cpu_decodes_at_its_own_share_of_the_measured_stream() -> None:
    flags = detect_hardware(BundleRunner(SPR)).cpu.flags
    plain = [f for f in flags if f not in ("avx512_vnni", "avx_vnni")]
    dot_estimate = estimate(REQUEST, _box(flags), catalog=CATALOG)
    other_estimate = estimate(REQUEST, _box(plain), catalog=CATALOG)
    dot, other = dot_estimate.speed, other_estimate.speed
    assert CPU.measured_dot_decode_efficiency
    assert CPU.measured_decode_efficiency
    ratio = CPU.measured_dot_decode_efficiency / CPU.measured_decode_efficiency
    # the weight read dominates a depth-0 token: the figures follow the efficiencies closely
    assert abs(dot.tg_tps / other.tg_tps / ratio - 1) < 0.05
    assert any("int8 dot-product CPU's efficiency spread" in b for b in dot_estimate.basis)
    assert not any("int8 dot-product" in b for b in other_estimate.basis)
    low, high = CPU.measured_dot_decode_range
    assert dot.tg_tps_range[1] / dot.tg_tps_range[0] < high / low * 1.05


def test_a_spec_bandwidth_ignores_the_measured_figures() -> None:
    flags = detect_hardware(BundleRunner(SPR)).cpu.flags
    spec = estimate(REQUEST, _box(flags, source="catalog"), catalog=CATALOG)
    measured = estimate(REQUEST, _box(flags), catalog=CATALOG)
    assert spec.speed.tg_tps != measured.speed.tg_tps
    assert not any("int8 dot-product" in b for b in spec.basis)


def test_which_cpus_run_their_dot_products_on_256_bit_units() -> None:
    assert not half_width_dot("GenuineIntel", ["avx2", "avx512_vnni", "avx_vnni"])
    assert half_width_dot("AuthenticAMD", ["avx2", "avx512_vnni"])  # Zen 4
    assert half_width_dot("GenuineIntel", ["avx2", "avx_vnni"])  # AVX-VNNI: the VEX form
    assert not half_width_dot("AuthenticAMD", ["avx2"])  # no int8 dot products at all


def test_the_amd_run_is_an_amd_box_with_vnni() -> None:
    run = json.loads(AMD_RUN.read_text(encoding="utf-8"))
    assert run["cpu"].startswith("AMD")
    assert "avx512_vnni" in run["flags"]


def test_an_amd_vnni_cpu_decodes_at_the_amd_share() -> None:
    flags = detect_hardware(BundleRunner(SPR)).cpu.flags
    intel = estimate(REQUEST, _box(flags), catalog=CATALOG)
    amd = estimate(REQUEST, _box(flags, vendor="AuthenticAMD"), catalog=CATALOG)
    assert CPU.measured_dot_decode_efficiency
    assert CPU.measured_half_dot_decode_efficiency
    ratio = CPU.measured_half_dot_decode_efficiency / CPU.measured_dot_decode_efficiency
    assert abs(amd.speed.tg_tps / intel.speed.tg_tps / ratio - 1) < 0.05
    assert any("int8 dot-product CPU's on 256-bit units" in b for b in amd.basis)
    assert not any("256-bit" in b for b in intel.basis)
