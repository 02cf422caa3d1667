"""Checks of the quality scorer against evidence it should agree with.

Kendall's tau between the chat score and the arena's open-model ordering, leave-one-out: the
arena rating is itself an input of the chat score, so each rated model is scored from an
evidence table built without its own rating (every line and mean fitted again without it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackctl.estimate.catalog import ModelEntry
from stackctl.models.policy import Policy
from stackctl.resolve.evidence import build_evidence, measured
from stackctl.resolve.score import model_quality

ARENA = "arena_text"


def kendall_tau(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking counted as neither concordant nor discordant)."""
    n = len(xs)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = concordant + discordant
    denom = ((pairs + ties_x) * (pairs + ties_y)) ** 0.5
    return (concordant - discordant) / denom if denom else 0.0


@dataclass(frozen=True)
class TauResult:
    n: int
    tau: float
    rows: list[tuple[str, float, float]]  # model, arena rating, leave-one-out chat score


def arena_tau(
    policy: Policy, models: Mapping[str, ModelEntry], workload: str = "chat"
) -> TauResult:
    """Tau between the workload score (its own arena rating left out) and the arena rating."""
    rated = {m: f[ARENA] for m, f in measured(policy.quality).items() if ARENA in f}
    rows = []
    for model_id in sorted(rated):
        if model_id not in models:
            continue
        loo = build_evidence(policy.quality, models, drop=(model_id, ARENA))
        policy_score = model_quality(models[model_id], workload, policy, loo)
        rows.append((model_id, rated[model_id], policy_score.value))
    tau = kendall_tau([r[1] for r in rows], [r[2] for r in rows])
    return TauResult(len(rows), tau, rows)
