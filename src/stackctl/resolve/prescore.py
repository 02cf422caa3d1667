"""Stage 3, prescore: quality for the workload (quant loss included) plus backend preference,
and the candidates in that order, the order the evaluate stage walks them in."""

from __future__ import annotations

from collections.abc import Mapping

from stackctl.estimate.catalog import ModelEntry
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.evidence import evidence_for
from stackctl.resolve.quirks import backend_points, matching_quirks, shape_of
from stackctl.resolve.score import Score, is_moe, quality_score


def _points(hardware: HardwareProfile, entry: ModelEntry, backend: str, engine: str,
            policy: Policy) -> float:  # fmt: skip
    shape = shape_of(hardware, backend=backend, moe=is_moe(entry), speculative="none",
                     engine=engine)  # fmt: skip
    quirks = matching_quirks(policy, shape)
    return policy.runtime.backend_points.get(backend, 0.0) + backend_points(quirks, backend)


def score_order(c: Candidate) -> tuple[float, str, str, str]:
    return (-c.rank, c.entry.id, c.artefact.quant, c.backend)


def prescore(cands: list[Candidate], spec: StackSpec, hardware: HardwareProfile,
             policy: Policy, models: Mapping[str, ModelEntry]) -> list[Candidate]:  # fmt: skip
    """Score every candidate (one quality score per file) and sort best first."""
    evidence = evidence_for(policy, models)
    scores: dict[int, Score] = {}
    for c in cands:
        a = c.artefact
        if id(a) not in scores:
            scores[id(a)] = quality_score(
                c.entry, a.quant, spec.workload, policy, evidence, a.tensor_mix
            )
        c.score = scores[id(a)]
        c.points = _points(hardware, c.entry, c.backend, c.engine.name, policy)
    return sorted(cands, key=score_order)
