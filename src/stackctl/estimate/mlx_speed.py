"""mlx-lm's speed on Apple silicon: llama.cpp's figure for the GGUF of like bits on the same box,
times the published same-box ratio of the two engines (catalog/engines.yaml mlx-lm
`mlx.versus_llamacpp`), never above the bandwidth bound.

MLX has no llama-bench rows of its own to fit a roofline to, so its figure rests on llama.cpp's
calibrated one and on runs that measured both engines on one machine: for this model where a
run exists, else for models of its kind (MoE or dense) at the same bits. `stackctl estimate
--engine mlx` and the resolver's MLX candidates take their figures from here, and the resolver's
engine choice from `verdict`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import EstimateCatalog, lookup_quant
from stackctl.estimate.speed import TTFT_PROMPT
from stackctl.models.catalog import EngineComparison, MlxRules
from stackctl.models.estimate import SpeedEstimate


@dataclass(frozen=True)
class Verdict:
    """The engine chosen for one model at one bit width, with the evidence in words."""

    mlx_faster: bool
    tg_ratio: float | None  # median MLX / llama.cpp decode over the rows used
    pp_ratio: float | None
    rows: tuple[EngineComparison, ...]
    why: str


def bits_of(rules: MlxRules, mlx_quant: str) -> int:
    return 8 if rules.comparable.get(mlx_quant) == "Q8_0" else 4


def _row_line(r: EngineComparison) -> str:
    return (f"{r.model} on {r.chip}: {r.mlx_quant} {r.mlx_tg:g} vs {r.gguf_quant} "
            f"{r.gguf_tg:g} tok/s ({r.url}, {r.date})")  # fmt: skip


def verdict(rules: MlxRules, model: str, moe: bool, mlx_quant: str) -> Verdict:
    """MLX or llama.cpp for `model` at the bits of `mlx_quant`, from the comparisons."""
    bits = bits_of(rules, mlx_quant)
    gguf = rules.comparable[mlx_quant]
    same_bits = [r for r in rules.versus_llamacpp if r.bits == bits and r.counted]
    rows = [r for r in same_bits if r.model == model]
    scope = f"{model} itself"
    if not rows:
        rows = [r for r in same_bits if r.moe == moe]
        scope = f"{'MoE' if moe else 'dense'} models at {bits} bits (none for {model} itself)"
    if not rows:
        return Verdict(False, None, None, (), (
            f"llama.cpp over mlx-lm {mlx_quant}: no published same-box comparison of MLX "
            f"{bits}-bit and {gguf} for {'MoE' if moe else 'dense'} models; without evidence "
            "the engine stackctl builds and calibrates stays"))  # fmt: skip
    tg = statistics.median(r.mlx_tg / r.gguf_tg for r in rows)
    pps = [r.mlx_pp / r.gguf_pp for r in rows if r.mlx_pp and r.gguf_pp]
    pp = statistics.median(pps) if pps else None
    evidence = "; ".join(_row_line(r) for r in rows)
    pp_words = (f", prefill x{pp:.2f}" if pp is not None
                else ", prefill not compared (taken as llama.cpp's)")  # fmt: skip
    faster = tg > rules.faster_margin
    head = (f"mlx-lm {mlx_quant} over llama.cpp {gguf}" if faster
            else f"llama.cpp {gguf} over mlx-lm {mlx_quant}")  # fmt: skip
    test = ">" if faster else "<="
    return Verdict(faster, tg, pp, tuple(rows), (
        f"{head}: decode x{tg:.2f} (median over {len(rows)} same-box run(s) for {scope}) "
        f"{test} the x{rules.faster_margin:g} noise margin{pp_words}; evidence: {evidence}; "
        f"quality {rules.quality.split(':')[0]}"))  # fmt: skip


def mlx_quant(name: str, catalog: EstimateCatalog) -> tuple[MlxRules, str]:
    """The MLX rules and the name they give the build `name` asks for ('4bit', 'mlx-4bit' ->
    'MLX-4bit'); a GGUF quant is not an MLX build."""
    rules = catalog.mlx
    if rules is None:
        raise EstimateError("no mlx-lm rules in catalog/engines.yaml", hint="--engine llama.cpp")
    recipe = lookup_quant(name, catalog)
    for quant in rules.comparable:
        if lookup_quant(quant, catalog) == recipe:
            return rules, quant
    raise EstimateError(
        f"mlx-lm loads MLX builds, and '{name}' is a GGUF quant",
        hint=f"--quant {' or '.join(rules.comparable)} (the GGUF of like bits: "
        f"{', '.join(rules.comparable.values())}), or --engine llama.cpp",
    )


def unmeasured_span(rules: MlxRules, bits: int) -> tuple[float, float]:
    """Without a comparison for a model's kind: the lowest and highest decode ratio published
    at these bits for any model (1 to 1 where none is), the range an MLX figure may then take."""
    ratios = [r.mlx_tg / r.gguf_tg for r in rules.versus_llamacpp if r.bits == bits and r.counted]
    return (min(ratios), max(ratios)) if ratios else (1.0, 1.0)


def decode_bound(bandwidth_gbps: float | None, weights: int, active_share: float) -> float | None:
    """Physics: one token reads every active weight once (MoE: the active share)."""
    if not bandwidth_gbps or weights <= 0:
        return None
    return bandwidth_gbps * 1e9 / (weights * active_share)


def scaled_speed(
    base: SpeedEstimate, gguf: str, v: Verdict, span: tuple[float, float], bound: float | None
) -> tuple[SpeedEstimate, str]:
    """MLX's figures from llama.cpp's (`base`, for the `gguf` file on the same box) and the
    verdict's ratios, and the basis line that says so. Without a ratio: llama.cpp's figure,
    its range stretched over `span`."""
    ratio = v.tg_ratio if v.tg_ratio is not None else 1.0
    low_ratio, high_ratio = (ratio, ratio) if v.tg_ratio is not None else span
    pp_ratio = v.pp_ratio or 1.0
    tg = base.tg_tps * ratio
    low, high = base.tg_tps_range
    tg_range = (low * low_ratio, min(high * high_ratio, bound) if bound else high * high_ratio)
    # prefill: never above llama.cpp's top of range, which the estimator caps at peak / ops.
    # A ratio that would pass it says only "no slower than llama.cpp": its figure is kept.
    roof, pp_low = base.pp_tps_range[1], base.pp_tps_range[0]
    over = base.pp_tps * pp_ratio > roof
    tg = min(tg, bound) if bound else tg
    pp = base.pp_tps if over else base.pp_tps * pp_ratio
    speed = base.model_copy(
        update={
            "tg_tps": tg,
            "tg_tps_range": tg_range,
            "pp_tps": pp,
            "pp_tps_range": (min(pp_low, pp_low * pp_ratio), min(roof, roof * pp_ratio)),
            "tg_tps_ceiling": bound or base.tg_tps_ceiling,
            "tg_tps_plain": None,
            "spec_tokens_per_step": None,
            "ttft_s": round(TTFT_PROMPT / pp + 1.0 / tg, 3) if pp and tg else base.ttft_s,
        }
    )
    capped = (
        f", decode capped at the bandwidth bound {bound:.1f} tok/s"
        if base.tg_tps * ratio > (bound or math.inf)
        else ""
    )
    if over:
        capped += (f", prefill x{pp_ratio:.2f} would pass the compute bound {roof:.0f} tok/s: "
                   "llama.cpp's figure kept")  # fmt: skip
    if v.tg_ratio is None:
        return speed, (
            f"mlx-lm speed: llama.cpp {gguf} on this box ({base.tg_tps:.1f} tok/s decode, "
            f"{base.pp_tps:.0f} prefill) as it is: no published same-box comparison for this "
            f"kind of model, so the range spans the ratios published for any (x{span[0]:.2f}-"
            f"x{span[1]:.2f}, catalog/engines.yaml mlx-lm){capped}"
        )
    return speed, (
        f"mlx-lm speed: llama.cpp {gguf} on this box ({base.tg_tps:.1f} tok/s decode, "
        f"{base.pp_tps:.0f} prefill) x{ratio:.2f} decode, x{pp_ratio:.2f} prefill, the "
        f"published same-box ratios (catalog/engines.yaml mlx-lm){capped}"
    )
