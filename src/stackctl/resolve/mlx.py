"""mlx-lm on Apple silicon: which engine serves a model at a given bit width, and its figures.

The choice is made from published same-box runs of both engines (catalog/engines.yaml mlx-lm
`mlx.versus_llamacpp`), never from the estimator alone: MLX is kept only where the evidence
for this model (else for models of its kind, MoE or dense) at this bit width shows it decoding
faster than llama.cpp/Metal by more than the noise margin. Otherwise llama.cpp is kept and the
plan says why. Quality is the same at comparable bits (catalog/quants_quality.yaml).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from stackctl.lock import hardware_sha256
from stackctl.models.catalog import EngineComparison, EngineEntry, MlxRules
from stackctl.models.hardware import HardwareProfile
from stackctl.models.resolved import Placement
from stackctl.resolve.candidate import FULL, GIB, Candidate
from stackctl.resolve.session import Session, estimate_cached, request_for

MLX = "mlx-lm"


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


def _rules(engines: dict[str, EngineEntry]) -> MlxRules | None:
    entry = engines.get(MLX)
    return entry.mlx if entry is not None else None


def choose_engines(cands: list[Candidate], engines: dict[str, EngineEntry]) -> None:
    """For every MLX candidate and its llama.cpp twin at comparable bits (same model, metal),
    reject the engine the evidence does not favour; the kept one carries the reason."""
    rules = _rules(engines)
    if rules is None:
        return
    for mlx in [c for c in cands if c.engine.name == MLX and c.reject is None]:
        gguf = rules.comparable.get(mlx.artefact.quant)
        twins = [c for c in cands if c.engine.name == "llama.cpp" and c.backend == "metal"
                 and c.entry.id == mlx.entry.id and c.artefact.quant == gguf
                 and c.reject is None]  # fmt: skip
        v = verdict(rules, mlx.entry.id, mlx.entry.moe is not None, mlx.artefact.quant)
        mlx.engine_note = v.why
        if v.mlx_faster:
            for twin in twins:
                twin.reject = f"engine: {v.why}"
        elif twins:
            mlx.reject = f"engine: {v.why}"
            for twin in twins:
                twin.engine_note = v.why
        else:
            mlx.reject = f"engine: {v.why} (and no llama.cpp file at {gguf} to compare with)"


def place_mlx(
    session: Session, c: Candidate, hw: HardwareProfile, users: int, engines: dict[str, EngineEntry]
) -> None:
    """Memory from the estimator's MLX rule; speed from llama.cpp's estimate of the comparable
    GGUF on this box times the evidence's ratio, never above the bandwidth bound."""
    c.evaluated = True
    rules = _rules(engines)
    acc = hw.accelerators[0] if hw.accelerators else None
    if rules is None or acc is None or acc.vendor != "apple":
        c.reject = "mlx-lm runs only on Apple silicon (Metal)"
        return
    key = hardware_sha256(hw)
    own = estimate_cached(session, request_for(c, hw, users).model_copy(update={"engine": "mlx"}),
                          hw, key)  # fmt: skip
    if isinstance(own, str):
        c.reject = f"estimator: {own}"
        return
    c.estimate, c.memory, c.placement = own, own.memory.total_bytes, Placement(ngl=FULL)
    if not own.fits:
        short = max(d.shortfall_bytes for d in own.memory.devices)
        c.reject = f"does not fit: {short / GIB:.1f} GiB short"
        return
    gguf = rules.comparable[c.artefact.quant]
    twin = request_for(c, hw, users, ngl=FULL).model_copy(update={"quant": gguf})
    base = estimate_cached(session, twin, hw, key)
    v = verdict(rules, c.entry.id, c.entry.moe is not None, c.artefact.quant)
    if isinstance(base, str) or v.tg_ratio is None:
        c.reject = f"no llama.cpp {gguf} estimate to scale: {base}" if isinstance(base, str) else (
            f"engine: {v.why}")  # fmt: skip
        return
    bound = _decode_bound(c, acc.bandwidth_gbps, own.memory.weights_bytes)
    ratio, pp_ratio = v.tg_ratio, v.pp_ratio or 1.0
    tg = base.speed.tg_tps * ratio
    c.tg = min(tg, bound) if bound else tg
    low, high = base.speed.tg_tps_range
    c.tg_range = (low * ratio, min(high * ratio, bound) if bound else high * ratio)
    # prefill: never above llama.cpp's top of range, which the estimator caps at peak / ops.
    # A ratio that would pass it says only "no slower than llama.cpp": its figure is kept.
    roof, low = base.speed.pp_tps_range[1], base.speed.pp_tps_range[0]
    over = base.speed.pp_tps * pp_ratio > roof
    c.pp = base.speed.pp_tps if over else base.speed.pp_tps * pp_ratio
    c.pp_range = (min(low, low * pp_ratio), min(roof, roof * pp_ratio))
    c.tg_ceiling, c.pp_ceiling = bound or own.speed.tg_tps_ceiling, base.speed.pp_tps_ceiling
    capped = (
        f", decode capped at the bandwidth bound {bound:.1f} tok/s" if tg > (bound or tg) else ""
    )
    if over:
        capped += (f", prefill x{pp_ratio:.2f} would pass the compute bound {roof:.0f} tok/s: "
                   "llama.cpp's figure kept")  # fmt: skip
    c.basis.append(
        f"mlx-lm speed: llama.cpp {gguf} on this box ({base.speed.tg_tps:.1f} tok/s decode, "
        f"{base.speed.pp_tps:.0f} prefill) x{ratio:.2f} decode, x{pp_ratio:.2f} prefill, the "
        f"published same-box ratios (catalog/engines.yaml mlx-lm){capped}"
    )


def _decode_bound(c: Candidate, bandwidth_gbps: float | None, weights: int) -> float | None:
    """Physics: one token reads every active weight once (MoE: the active share)."""
    if not bandwidth_gbps or weights <= 0:
        return None
    share = 1.0
    if c.entry.moe is not None and c.entry.params_active and c.entry.params_total:
        share = c.entry.params_active / c.entry.params_total
    return bandwidth_gbps * 1e9 / (weights * share)
