"""Stage 3, prescore: quality for the workload (quant loss included) plus backend preference,
and the candidates in that order, the order the evaluate stage walks them in."""

from __future__ import annotations

from collections.abc import Mapping

from stackctl.estimate.catalog import ModelEntry
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy, Quirk
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.evidence import evidence_for
from stackctl.resolve.quirks import backend_points, matching_quirks, server_setting, shape_of
from stackctl.resolve.score import Score, is_moe, quality_score


def _quirks(c: Candidate, hardware: HardwareProfile, policy: Policy) -> list[Quirk]:
    shape = shape_of(hardware, backend=c.backend, moe=is_moe(c.entry), speculative="none",
                     engine=c.engine.name)  # fmt: skip
    return matching_quirks(policy, shape)


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
        quirks = _quirks(c, hardware, policy)
        c.points = policy.runtime.backend_points.get(c.backend, 0.0)
        c.points += backend_points(quirks, c.backend)
        # the speed estimate runs the CPU kernels the server will (no AMX under --no-repack)
        c.repack = server_setting(quirks, "repack") != "off"
    return sorted(cands, key=score_order)
