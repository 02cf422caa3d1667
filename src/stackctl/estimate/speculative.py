"""Speed with its range, and speculative decoding (a draft model or MTP) from an acceptance rate.

A speculative step drafts n tokens one at a time (each reads the draft's active bytes) and
verifies n+1 tokens in one target pass (`speed.verify_devices`: dense bytes once, the expert
bytes of every expert any of the n+1 tokens routes to); the expected tokens per step follow
from the per-token acceptance rate (`speed.speculative_tps`). Acceptance is an input: the
default and its spread are data in catalog/backends.yaml with their source.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.companions import Companion
from stackctl.estimate.placement import Device, Placement
from stackctl.estimate.speed import (
    GB,
    DeviceSpeed,
    EfficiencySet,
    as_speed_estimate,
    at_end,
    decode_ceiling,
    decode_efficiencies,
    decode_tps,
    measured_backends,
    shown,
    shown_up,
    speculative_tps,
    speed_figures,
    validation_spread,
    verify_devices,
)
from stackctl.estimate.validation import widen
from stackctl.models.estimate import EstimateRequest, SpeedEstimate


@dataclass(frozen=True)
class SpecDraft:
    """What one drafted token reads, and from which memory."""

    read_bytes: float
    bandwidth_gbps: float | None
    backend: str


def spec_draft(
    devices: list[Device], placement: Placement, extras: list[Companion]
) -> SpecDraft | None:
    cpu = len(devices) - 1
    for extra in extras:
        if extra.kind not in ("draft", "mtp"):
            continue
        if extra.at_output:
            dev = placement.output_device
        else:
            dev = 0 if extra.on_gpu and cpu > 0 and placement.ngl > 0 else cpu
        return SpecDraft(extra.read_bytes, devices[dev].bandwidth_gbps, devices[dev].backend)
    return None


def _draft_seconds(draft: SpecDraft, efficiency: float) -> float:
    if not draft.bandwidth_gbps:
        return 0.0
    return draft.read_bytes / (draft.bandwidth_gbps * GB * efficiency)


def _spec_tps(
    speeds: list[DeviceSpeed],
    depth: int,
    eff: EfficiencySet,
    draft: SpecDraft,
    n_draft: int,
    acceptance: float,
) -> tuple[float, float]:
    plain = decode_tps(speeds, depth, eff)
    verify = decode_tps(verify_devices(speeds, n_draft + 1), depth, eff)
    if not plain or not verify:
        return 0.0, 1.0
    t_draft = _draft_seconds(draft, eff[draft.backend].weights)
    return speculative_tps(t_draft, 1.0 / verify, n_draft, acceptance)


def speed_estimate(
    speeds: list[DeviceSpeed],
    request: EstimateRequest,
    catalog: EstimateCatalog,
    draft: SpecDraft | None,
) -> SpeedEstimate:
    backends = catalog.backends
    figures = speed_figures(speeds, request.depth, backends)
    plain = as_speed_estimate(figures, request.depth)
    if draft is None or request.spec_type == "none":
        return plain
    facts = backends.speculative
    alpha = request.spec_acceptance or facts.default_acceptance
    spread = facts.acceptance_spread
    names = {s.backend for s in speeds} | {draft.backend}
    factors = {n: backends.backends[n] for n in names}
    mid, low, high = decode_efficiencies(factors, *measured_backends(speeds))
    n = request.spec_draft_n
    tg, tokens = _spec_tps(speeds, request.depth, mid, draft, n, alpha)
    tg_low, _ = _spec_tps(at_end(speeds, 1), request.depth, low, draft, n,
                          max(0.01, alpha - spread))  # fmt: skip
    tg_high, _ = _spec_tps(at_end(speeds, 2), request.depth, high, draft, n,
                           min(0.99, alpha + spread))  # fmt: skip
    ceiling = decode_ceiling(speeds, request.depth, tokens)
    tg_low, tg_high = widen(tg, (tg_low, tg_high), validation_spread(speeds, backends, "tg"),
                            ceiling)  # fmt: skip
    return plain.model_copy(
        update={
            "tg_tps": shown(tg, 2),
            "tg_tps_range": (shown(tg_low, 2), shown(tg_high, 2)),
            "tg_tps_plain": figures.tg,
            "spec_tokens_per_step": round(tokens, 3),
            "tg_tps_ceiling": shown_up(ceiling),
        }
    )


def speculative_basis(request: EstimateRequest, speed: SpeedEstimate) -> list[str]:
    if speed.spec_tokens_per_step is None:
        return []
    given = (
        f"{request.spec_acceptance:g} given"
        if request.spec_acceptance
        else "assumed (catalog/backends.yaml speculative)"
    )
    return [
        f"speculative ({request.spec_type}): {request.spec_draft_n} drafted tokens per step, "
        f"acceptance {given}; {speed.spec_tokens_per_step:.2f} tokens per step "
        f"(Leviathan et al. 2023); one verify pass reads the weights once (for an MoE, the "
        f"experts any of the {request.spec_draft_n + 1} tokens routes to); plain decode "
        f"{speed.tg_tps_plain} tok/s"
    ]
