"""Stage 2, screen: the stack's hard constraints that need no estimate (pins, preferences,
native context, download cap, a file far larger than the box)."""

from __future__ import annotations

from stackctl.estimate.catalog import ModelEntry
from stackctl.layout import is_loopback
from stackctl.models.catalog import ModelArtefact
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import GIB, Candidate
from stackctl.resolve.score import is_moe, params_b


def _preference_reason(spec: StackSpec, entry: ModelEntry, artefact: ModelArtefact) -> str | None:
    p = spec.preferences
    if p.families and entry.family not in p.families:
        return f"preference: family {entry.family} not in {p.families}"
    if entry.family in p.exclude_families:
        return f"preference: family {entry.family} excluded"
    license_ = artefact.license or entry.license
    if p.licenses and license_ not in p.licenses:
        return f"preference: licence {license_ or 'unknown'} not in {p.licenses}"
    if p.architecture == "dense" and is_moe(entry):
        return "preference: dense models only"
    if p.architecture == "moe" and not is_moe(entry):
        return "preference: MoE models only"
    return None


def _pin_reason(spec: StackSpec, artefact: ModelArtefact, backend: str) -> str | None:
    pin = spec.pin
    if pin is None:
        return None
    if artefact.model != pin.model or (pin.quant and artefact.quant != pin.quant):
        return "pin: not the pinned model"
    if pin.backend and backend != pin.backend:
        return f"pin: backend {backend} is not the pinned {pin.backend}"
    if pin.engine and artefact.engine != pin.engine:
        return f"pin: engine {artefact.engine} is not the pinned {pin.engine}"
    return None


def _approx_weights(entry: ModelEntry, artefact: ModelArtefact, policy: Policy) -> float | None:
    """Screening only: file size if known, else params x bits per weight (quants_quality)."""
    if artefact.size:
        return float(artefact.size)
    total, _ = params_b(entry, policy)
    row = policy.quants.quants.get(artefact.quant)
    if total is None or row is None:
        return None
    return total * 1e9 * row.bpw / 8


def _capacity(hardware: HardwareProfile) -> int:
    gpu = sum(a.memory_budget_bytes or a.memory_bytes or 0 for a in hardware.accelerators)
    host = 0 if any(a.unified for a in hardware.accelerators) else hardware.memory.total_bytes or 0
    return gpu + host


def screen(c: Candidate, spec: StackSpec, hardware: HardwareProfile, policy: Policy) -> None:
    """Hard constraints that need no estimate."""
    reason = _pin_reason(spec, c.artefact, c.backend) or _preference_reason(
        spec, c.entry, c.artefact
    )
    if reason is None and c.artefact.kind == "base" and spec.pin is None:
        reason = "a base (pretrained) model has no chat template: used only when pinned"
    if reason is None and c.engine.name == "mlx-lm" and not is_loopback(spec.serve.host):
        reason = f"engine: mlx_lm.server has no API key; loopback only, not {spec.serve.host}"
    if reason is None and c.ctx > c.entry.ctx_native:
        reason = f"context: model's native {c.entry.ctx_native} < {c.ctx} asked per user"
    weights = _approx_weights(c.entry, c.artefact, policy)
    cap = spec.preferences.max_download_gib
    if reason is None and cap and weights and weights > cap * GIB:
        reason = f"preference: download ~{weights / GIB:.0f} GiB > max {cap:g} GiB"
    if reason is None and weights and weights * 0.9 > _capacity(hardware):
        reason = (
            f"does not fit: weights alone ~{weights / GIB:.0f} GiB, "
            f"the box has {_capacity(hardware) / GIB:.0f} GiB"
        )
    c.reject = reason


def screen_all(cands: list[Candidate], spec: StackSpec, hardware: HardwareProfile,
               policy: Policy) -> None:  # fmt: skip
    for c in cands:
        screen(c, spec, hardware, policy)
