"""A bandwidth measured on a CPU with int8 dot-product instructions takes its own decode
efficiency, by how llama.cpp runs the dot products (devices.dot_path): with AMX, two recorded
Xeons read 0.67-0.93 of the probe's stream (VNNI, AMX-2); with VNNI and no AMX, an AMD Zen 4 VM
and an Intel Xeon VM read 0.45-0.81 (VNNI-AMD, VNNI-INTEL), and an AMX Xeon under --no-repack
0.54-0.70 (AMX-2); the AVX2 EPYC VM 0.40-0.58 (M-CPU). A plan serves an AMX CPU with
--no-repack (quirk x86-amx-no-repack), so it predicts the path it serves."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from stackctl.catalog import load_catalog
from stackctl.cli.hardware_args import load_profile
from stackctl.detect import BundleRunner, detect_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.devices import dot_path
from stackctl.estimate.validation import deciles
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir
from stackctl.spec import load_stack, stack_path

ROOT = Path(__file__).resolve().parents[2]
SPR = ROOT / "../shared/fixtures/hw/xeon-platinum-8462yplus-spr"  # flags include avx512_vnni
RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni.json"
AMD_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni_amd.json"
INTEL_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_vnni_intel.json"
AMX_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_amx_2.json"
AMX_NO_REPACK_RUN = ROOT / "tests/data/estimate/llama_bench_cpu_amx_norepack.json"
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
    amx, amd, intel, amx2, no_repack = (
        json.loads(p.read_text("utf-8"))
        for p in (RUN, AMD_RUN, INTEL_RUN, AMX_RUN, AMX_NO_REPACK_RUN)
    )
    for run in (amx, amx2, no_repack):
        assert "amx_int8" in run["flags"]
    assert amx2["repack"] == 1
    assert no_repack["repack"] == 0  # llama-bench --repack 0: as a --no-repack lock serves
    for run in (amd, intel):
        assert "avx512_vnni" in run["flags"]
        assert "amx_int8" not in run["flags"]
    assert amd["cpu"].startswith("AMD")
    assert intel["cpu"].startswith("Intel")
    assert "avx512_vnni" in detect_hardware(BundleRunner(SPR)).cpu.flags


@pytest.mark.parametrize(
    ("runs", "field"),
    [
        ((RUN, AMX_RUN), "measured_amx_decode"),
        ((AMD_RUN, INTEL_RUN, AMX_NO_REPACK_RUN), "measured_vnni_decode"),
    ],
)
def test_the_catalog_figures_are_the_recorded_runs(runs: tuple[Path, ...], field: str) -> None:
    """The median, and the deciles the GPU ranges take (about 8 in 10 rows inside)."""
    effs = _efficiencies(*runs)
    assert getattr(CPU, f"{field}_efficiency") == round(statistics.median(effs), 2)
    low, high = getattr(CPU, f"{field}_range")
    assert (low, high) == deciles(effs)
    inside = sum(low <= e <= high for e in effs)
    assert 0.75 <= inside / len(effs) < 1


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
    # --no-repack keeps the weights out of the AMX buffer: the VNNI kernels run them
    assert dot_path(["avx2", "avx512_vnni", "amx_int8", "amx_tile"], repack=False) == "vnni"
    assert dot_path(["avx2", "avx512_vnni"]) == "vnni"  # Zen 4, or a Xeon VM without AMX
    assert dot_path(["avx2", "avx_vnni"]) == "vnni"  # AVX-VNNI: the VEX form
    assert dot_path(["avx2"]) == ""  # no int8 dot products at all


def test_a_plan_on_an_amx_cpu_predicts_the_kernels_it_serves(cpu_profile: Path) -> None:
    """The plan serves an AMX CPU with --no-repack; its decode figure is the VNNI path's, as
    `stackctl estimate --no-repack` gives it, not llama-bench's default AMX path (AMX-2: the
    deployed server read 0.57 of the probe where the AMX figure said 0.84)."""
    two_cores = load_profile(cpu_profile)  # this project's CI VM, with AMX added and a probe
    cpu = two_cores.cpu.model_copy(update={
        "flags": [*two_cores.cpu.flags, "avx512_vnni", "amx_int8", "amx_tile"],
        "bandwidth_gbps": 21.0, "bandwidth_source": "measured",
    })  # fmt: skip
    box = two_cores.model_copy(update={"cpu": cpu})
    resolved = resolve_stack(load_stack(stack_path("tiny-cpu")), box, load_catalog(catalog_dir()))
    assert "--no-repack" in resolved.runtime.server_args
    served = estimate(REQUEST.model_copy(update={"repack": False}), box, catalog=CATALOG)
    default = estimate(REQUEST, box, catalog=CATALOG)
    assert any("int8 dot-product CPU's efficiency spread" in b for b in served.basis)
    ratio = CPU.measured_amx_decode_efficiency / CPU.measured_vnni_decode_efficiency  # type: ignore[operator]
    assert abs(default.speed.tg_tps / served.speed.tg_tps / ratio - 1) < 0.05
    planned = resolved.predicted.tg_tps
    assert abs(planned / served.speed.tg_tps - 1) < 0.05, (planned, served.speed.tg_tps)
