"""Speculative decoding as a candidate dimension: the model's MTP heads or a paired draft model.

Where the model ships MTP heads with a measured speed-up (catalog/runtime.yaml `mtp`), or the
catalog pairs a draft model with it (`drafts`, with the acceptance measured for the pair), the
placed candidate is estimated again with speculative decoding on: the heads or the draft count
against the same memory, and decode follows the estimator's draft-then-verify model (a verify
pass of an MoE reads the experts every drafted token routes to, which is what makes it lose
when the experts sit in system RAM). It is kept only when that still fits, predicts at least
`speculative_min_gain`, and serves 1-4 users. An MTP gain is calibrated to the measured one:
the estimator's gain on the box and file it was measured on, against the measurement, scales
the gain it predicts here (a measurement beats the model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stackctl.detect.declare import declare_hardware
from stackctl.models.catalog import Catalog, ModelArtefact
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import DraftRule, MtpSpeedup, Policy
from stackctl.resolve.candidate import FULL, GIB, Candidate, SpecPlan
from stackctl.resolve.place import estimate_placed
from stackctl.resolve.session import Session, estimate_for


@dataclass(frozen=True)
class _Option:
    plan: SpecPlan
    label: str


def draft_artefact(rule: DraftRule, catalog: Catalog) -> ModelArtefact | None:
    for artefact in catalog.artefacts:
        key = (artefact.model, artefact.quant, artefact.engine)
        if key == (rule.draft, rule.quant, "llama.cpp"):
            return artefact
    return None


def mtp_correction(model_id: str, rule: MtpSpeedup, session: Session) -> float | str:
    """Measured over predicted MTP gain on the box and file the speed-up was measured on."""
    if model_id in session.corrections:
        return session.corrections[model_id]
    ref = rule.reference
    hw = declare_hardware(gpus=[], system=ref.system, ram_gib=ref.ram_gib)
    plain = EstimateRequest(model=model_id, quant=ref.quant, backend=ref.backend,  # type: ignore[arg-type]
                            ngl=FULL)  # fmt: skip
    mtp = plain.model_copy(update={"spec_type": "mtp", "spec_draft_n": rule.n_max,
                                   "spec_acceptance": rule.acceptance})  # fmt: skip
    base, spec = estimate_for(session, plain, hw), estimate_for(session, mtp, hw)
    if isinstance(base, str) or isinstance(spec, str):
        return f"MTP calibration on {ref.system}: {base if isinstance(base, str) else spec}"
    predicted = spec.speed.tg_tps / base.speed.tg_tps
    correction = (rule.speedup - 1) / (predicted - 1) if predicted > 1 else 1.0
    session.corrections[model_id] = correction
    return correction


def _option(
    c: Candidate, policy: Policy, catalog: Catalog, session: Session
) -> _Option | str | None:
    """What speculative decoding this model could use: MTP first, then a draft model."""
    mtp = policy.runtime.mtp.get(c.entry.id)
    if c.entry.mtp_layers and mtp is not None:
        correction = mtp_correction(c.entry.id, mtp, session)
        if isinstance(correction, str):
            return correction
        plan = SpecPlan(kind="mtp", n_max=mtp.n_max, acceptance=mtp.acceptance,
                        source=mtp.source, correction=correction)  # fmt: skip
        ref = mtp.reference
        return _Option(plan, f"MTP heads (n_max {mtp.n_max}; gain calibrated x{correction:.2f} "
                             f"to the x{mtp.speedup:g} measured on {ref.system} {ref.backend} "
                             f"{ref.quant})")  # fmt: skip
    rule = policy.runtime.drafts.get(c.entry.id)
    if rule is None:
        return None
    artefact = draft_artefact(rule, catalog)
    if artefact is None:
        return f"draft {rule.draft} {rule.quant}: no file for it in catalog/artefacts.yaml"
    plan = SpecPlan(kind="draft", n_max=rule.n_max, acceptance=rule.acceptance,
                    source=rule.source, draft=rule, draft_artefact=artefact)  # fmt: skip
    return _Option(plan, f"draft {rule.draft} {rule.quant}")


def _why_not(result: Estimate, c: Candidate, tg: float, min_gain: float) -> str | None:
    if not result.fits:
        short = max(d.shortfall_bytes for d in result.memory.devices)
        return f"does not fit beside the model ({short / GIB:.1f} GiB short)"
    if tg < c.tg * min_gain:
        return f"~{tg:.1f} vs ~{c.tg:.1f} tok/s without: below the x{min_gain:g} gain it must bring"
    return None


def try_speculative(
    c: Candidate,
    hw: HardwareProfile,
    users: int,
    *,
    session: Session,
    policy: Policy,
    catalog: Catalog,
) -> None:
    """Turn speculative decoding on for the placed candidate where it fits and pays."""
    if c.engine.name != "llama.cpp" or c.reject is not None:
        return
    option = _option(c, policy, catalog, session)
    if option is None:
        return
    if isinstance(option, str):
        c.basis.append(f"speculative: {option}: off")
        return
    rt = policy.runtime
    if users > rt.speculative_max_users:
        c.basis.append(f"speculative: {option.label} off at {users} users "
                       f"(> {rt.speculative_max_users}: {rt.speculative_source})")  # fmt: skip
        return
    result = estimate_placed(session, c, hw, users, **option.plan.request_fields())
    if isinstance(result, str):
        c.basis.append(f"speculative: {option.label}: estimator: {result}: off")
        return
    tg = option.plan.calibrated(result.speed.tg_tps, c.tg)
    why = _why_not(result, c, tg, rt.speculative_min_gain)
    if why is not None:
        c.basis.append(f"speculative: {option.label}: {why}: off")
        return
    scale = tg / result.speed.tg_tps if result.speed.tg_tps else 1.0
    c.basis.append(
        f"speculative: {option.label}, acceptance {option.plan.acceptance:g} per token "
        f"({option.plan.source}): decode ~{c.tg:.1f} -> ~{tg:.1f} tok/s (draft-then-verify, "
        "Leviathan et al. 2023 eq. 1)"
    )
    c.speculative, c.estimate, c.memory = option.plan, result, result.memory.total_bytes
    # a measured correction above 1 never lifts decode past tokens per step x bandwidth
    c.tg_ceiling = result.speed.tg_tps_ceiling
    top = c.tg_ceiling or math.inf
    c.tg = min(tg, top)
    c.tg_range = (min(result.speed.tg_tps_range[0] * scale, c.tg),
                  min(result.speed.tg_tps_range[1] * scale, top))  # fmt: skip
