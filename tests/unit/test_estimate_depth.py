"""Speed at depth against recorded llama-bench rows (tests/data/estimate/depth_reference.yaml).

The rows are public Strix Halo runs (ROCm and RADV, depth 32K) and this machine's own CPU
runs (depth 4096). The ratio pp(d)/pp(0) and tg(d)/tg(0) depends only on how the attention
over the cached context compares with the rest of a token's work, so the catalog's attention
factors are checked on every row, whatever its absolute speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.depth_check import (
    DepthRow,
    catalog_ratios,
    load_depth_rows,
    row_hardware,
    row_speeds,
)
from stackctl.estimate.speed import at_end, efficiency_sets, prefill_tps
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir

ROWS = load_depth_rows(Path(__file__).parents[1] / "data/estimate/depth_reference.yaml")


@pytest.fixture(scope="module")
def cat() -> EstimateCatalog:
    """backends.yaml's own factors, which benchmarks/depth_calibration.py fits to these rows;
    the public fit laid over them (speed_fit.yaml) answers to tests/unit/test_speed_public.py."""
    return load_estimate_catalog(catalog_dir(), fitted=False)


def test_rows_cover_cpu_and_two_gpu_backends() -> None:
    assert {r.backend for r in ROWS} >= {"cpu", "rocm", "vulkan"}
    assert any(r.model == "qwen3.6-35b-a3b" for r in ROWS)  # a hybrid MoE
    assert any(r.model == "gemma-3-270m" for r in ROWS)  # sliding-window layers


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_depth_ratio_inside_the_catalog_range(row: DepthRow, cat: EstimateCatalog) -> None:
    speeds = row_speeds(row, cat)
    # the factors the estimate reads for this chip (devices.backend_key: rocm-amd-rdna3)
    name = next((s.backend for s in speeds if s.backend != "cpu"), row.backend)
    ratios = catalog_ratios(row, speeds, cat.backends.backends[name])
    for i, measured in enumerate((row.pp_ratio, row.tg_ratio)):
        low, high = ratios["low"][i], ratios["high"][i]
        assert low <= measured <= high, (row.id, "pp" if i == 0 else "tg", low, measured, high)
        assert ratios["mid"][i] == pytest.approx(measured, rel=0.16)


@pytest.mark.parametrize("row", [r for r in ROWS if r.backend != "cpu"], ids=lambda r: r.id)
def test_strix_halo_absolute_speed(row: DepthRow, cat: EstimateCatalog) -> None:
    """Declared Strix Halo (spec bandwidth, chip-table peak): every figure within its range."""
    for depth, pp, tg in ((0, row.pp_d0, row.tg_d0), (row.depth, row.pp_depth, row.tg_depth)):
        request = EstimateRequest(
            model=row.model, quant=row.quant, ctx=row.depth + 8192, ubatch=row.ubatch,
            backend=row.backend, depth=depth,
        )  # fmt: skip
        speed = estimate(request, row_hardware(row), catalog=cat).speed
        assert speed.tg_tps_range[0] <= tg <= speed.tg_tps_range[1], (depth, speed, tg)
        assert speed.tg_tps == pytest.approx(tg, rel=0.1)
        # the rows are pp2048 in 2048-token ubatches (64 tokens per routed expert on average;
        # about half the experts get more and pay a second tile); the estimate's own pp figure
        # is for a 512-token prompt
        devices = speed_inputs(request, row_hardware(row), cat)
        _, prefill = efficiency_sets(devices, cat.backends)
        low, high = (prefill_tps(at_end(devices, i), depth, prefill[i], prompt=row.prompt)
                     for i in (1, 2))  # fmt: skip
        assert low <= pp <= high, (depth, low, pp, high)


def test_sliding_window_layers_stop_growing_past_the_window(cat: EstimateCatalog) -> None:
    """Gemma 3: 5 of 6 layers attend to 512 tokens at most; only the full layers keep growing."""
    row = next(r for r in ROWS if r.model == "gemma-3-270m")
    host = row_speeds(row, cat)[0]
    assert host.window == 512
    assert host.window_row_bytes == 5 * host.full_row_bytes
    grow_early = host.attention_bytes(512) - host.attention_bytes(0)
    grow_late = host.attention_bytes(4608) - host.attention_bytes(4096)
    assert grow_late == pytest.approx(grow_early / 6)


def test_recurrent_state_is_read_at_every_depth(cat: EstimateCatalog) -> None:
    row = next(r for r in ROWS if r.model == "qwen3.6-35b-a3b")
    gpu = row_speeds(row, cat)[0]
    assert gpu.state_bytes > 0
    assert gpu.attention_bytes(0) == gpu.state_bytes
