"""Per model: the best-scored file of it that fits a box, evaluated like a plan does.

The same stages as a plan (enumerate -> screen -> prescore), then, per model, candidates in
score order are evaluated (placement, speculative) until one fits. The speed floor is not a
condition here: the predicted tok/s is reported, and whether it meets the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.models.hardware import HardwareProfile
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.evaluate import evaluate, meets_floor
from stackctl.resolve.plan import Resolver, candidates_in_score_order
from stackctl.resolve.quirks import raise_gtt_budget


@dataclass(frozen=True)
class Fit:
    candidate: Candidate | None
    why_not: str | None  # the best candidate's reason when none fits
    meets_floor: bool


def best_fits(spec: StackSpec, hardware: HardwareProfile, resolver: Resolver) -> dict[str, Fit]:
    planned, _ = raise_gtt_budget(hardware, resolver.policy)
    by_model: dict[str, list[Candidate]] = {}
    for c in candidates_in_score_order(spec, planned, resolver, context=spec.context):
        by_model.setdefault(c.entry.id, []).append(c)
    out: dict[str, Fit] = {}
    for model_id, cands in by_model.items():
        first_reason: str | None = None
        for c in cands:
            if c.reject is None:
                evaluate(c, spec, planned, resolver)
            if c.reject is None:
                out[model_id] = Fit(c, None, meets_floor(c, spec))
                break
            first_reason = first_reason or f"{c.label}: {c.reject}"
        else:
            out[model_id] = Fit(None, first_reason, False)
    return out
