"""mlx-lm on Apple silicon: which engine serves a model at a given bit width, and its figures.

The choice is made from published same-box runs of both engines (catalog/engines.yaml mlx-lm
`mlx.versus_llamacpp`), never from the estimator alone: MLX is kept only where the evidence
for this model (else for models of its kind, MoE or dense) at this bit width shows it decoding
faster than llama.cpp/Metal by more than the noise margin. Otherwise llama.cpp is kept and the
plan says why. Quality is the same at comparable bits (catalog/quants_quality.yaml).
"""

from __future__ import annotations

from stackctl.estimate.mlx_speed import verdict
from stackctl.lock import hardware_sha256
from stackctl.models.catalog import EngineEntry, MlxRules
from stackctl.models.hardware import HardwareProfile
from stackctl.models.resolved import Placement
from stackctl.resolve.candidate import FULL, GIB, Candidate
from stackctl.resolve.session import Session, estimate_cached, request_for

MLX = "mlx-lm"


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
    """The estimator's MLX figures (memory by its rule; speed: llama.cpp's estimate of the GGUF
    of like bits on this box times the evidence's ratio, never above the bandwidth bound),
    kept only where the evidence gives a ratio."""
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
    v = verdict(rules, c.entry.id, c.entry.moe is not None, c.artefact.quant)
    if v.tg_ratio is None:
        c.reject = f"engine: {v.why}"
        return
    speed = own.speed  # llama.cpp's figures for the GGUF of like bits, scaled (mlx_speed.py)
    c.tg, c.tg_range, c.pp, c.pp_range = speed.tg_tps, speed.tg_tps_range, speed.pp_tps, (
        speed.pp_tps_range)  # fmt: skip
    c.tg_ceiling, c.pp_ceiling = speed.tg_tps_ceiling, speed.pp_tps_ceiling
