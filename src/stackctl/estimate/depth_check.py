"""Speed at depth against recorded llama-bench rows: the ratios pp(d)/pp(0) and tg(d)/tg(0).

A ratio needs neither the absolute bandwidth nor the peak compute of the machine: it is the
share of a token's time the attention over the cached context takes, so it checks the
attention terms of the roofline (catalog/backends.yaml attention_* and kv_read_*) on rows
measured anywhere, even on hardware whose peak is unknown (a nominal peak cancels out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field

from stackctl.detect.declare import declare_hardware
from stackctl.estimate.catalog import BackendFactors, EstimateCatalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.hosts import cpu_host
from stackctl.estimate.speed import (
    DeviceSpeed,
    Efficiency,
    decode_efficiencies,
    decode_tps,
    prefill_efficiencies,
    prefill_tps,
)
from stackctl.models.base import StrictModel
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.yamlio import read_yaml, validate_yaml

NOMINAL_PEAK_GOPS = 1000.0  # stands in for an unknown peak: the pp ratio does not depend on it


class DepthRow(StrictModel):
    """One llama-bench measurement at depth 0 and at `depth`, with where it came from."""

    id: str
    source: str
    model: str
    quant: str
    quant_as_published: str | None = None
    backend: Literal["cpu", "cuda", "rocm", "vulkan", "metal"]
    system: str | None = None  # a catalog system name (declared hardware)
    ram_gib: float | None = None
    cpu_cores: int | None = None  # a bare CPU host instead of a system
    cpu_flags: list[str] = Field(default_factory=list)
    bandwidth_gbps: float | None = None
    ubatch: int = 512
    prompt: int = 512
    depth: int = Field(gt=0)
    pp_d0: float = Field(gt=0)
    tg_d0: float = Field(gt=0)
    pp_depth: float = Field(gt=0)
    tg_depth: float = Field(gt=0)

    @property
    def pp_ratio(self) -> float:
        return self.pp_depth / self.pp_d0

    @property
    def tg_ratio(self) -> float:
        return self.tg_depth / self.tg_d0


class DepthRows(StrictModel):
    schema_version: Literal[1]
    rows: list[DepthRow]


def row_hardware(row: DepthRow) -> HardwareProfile:
    if row.cpu_cores:
        return cpu_host(row.cpu_cores, row.cpu_flags, bandwidth_gbps=row.bandwidth_gbps)
    if not row.system:
        raise ValueError(f"depth row {row.id}: needs a system or cpu_cores")
    return declare_hardware(gpus=[], system=row.system, ram_gib=row.ram_gib)


def row_speeds(row: DepthRow, catalog: EstimateCatalog) -> list[DeviceSpeed]:
    request = EstimateRequest(
        model=row.model,
        quant=row.quant,
        ctx=row.depth + row.prompt + 256,
        ubatch=row.ubatch,
        backend=row.backend,
        threads=row.cpu_cores,
    )
    return speed_inputs(request, row_hardware(row), catalog)


def predicted_ratios(
    row: DepthRow, speeds: list[DeviceSpeed], decode: Efficiency, prefill: Efficiency
) -> tuple[float, float]:
    """(pp ratio, tg ratio) with one pair of efficiencies for every device's backend."""
    dec = {s.backend: decode for s in speeds}
    pre = {s.backend: prefill for s in speeds}
    tg = decode_tps(speeds, row.depth, dec) / decode_tps(speeds, 0, dec)
    nominal = [s if s.peak_gops else replace(s, peak_gops=NOMINAL_PEAK_GOPS) for s in speeds]
    pp = prefill_tps(nominal, row.depth, pre, row.prompt) / prefill_tps(nominal, 0, pre, row.prompt)
    return pp, tg


def catalog_ratios(
    row: DepthRow, speeds: list[DeviceSpeed], factors: BackendFactors
) -> dict[str, tuple[float, float]]:
    """{"mid"|"low"|"high": (pp ratio, tg ratio)}: the weight phase at the catalog's middle
    figure, the attention phase at its middle, low and high figure ("low": slowest attention,
    so the smallest ratios)."""
    decode = decode_efficiencies({row.backend: factors}, set())
    prefill = prefill_efficiencies({row.backend: factors})
    mid_dec, mid_pre = decode[0][row.backend], prefill[0][row.backend]
    out = {}
    for i, name in enumerate(("mid", "low", "high")):
        dec, pre = decode[i][row.backend], prefill[i][row.backend]
        out[name] = predicted_ratios(
            row,
            speeds,
            replace(mid_dec, attention=dec.attention, kv=dec.kv),
            replace(mid_pre, attention=pre.attention),
        )
    return out


def implied_factor(
    target: float, ratio_at: Callable[[float], float], low: float = 1e-4, high: float = 1.0
) -> float | None:
    """The efficiency at which `ratio_at` gives `target` (ratios grow with efficiency), by
    bisection in log space; None when no efficiency up to `high` reaches it."""
    if ratio_at(high) < target:
        return None
    for _ in range(60):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if ratio_at(mid) < target else (low, mid)
    return math.sqrt(low * high)


def load_depth_rows(path: Path) -> list[DepthRow]:
    return validate_yaml(DepthRows, read_yaml(path), path).rows
