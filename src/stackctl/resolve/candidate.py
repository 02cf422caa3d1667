"""A candidate stack (model file x engine x backend) and what evaluating it found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stackctl.estimate.catalog import ModelEntry
from stackctl.estimate.placement import ALL_LAYERS
from stackctl.models.catalog import EngineEntry, ModelArtefact
from stackctl.models.estimate import Estimate
from stackctl.models.policy import DraftRule
from stackctl.models.resolved import Placement
from stackctl.resolve.score import UNSCORED, Score

GIB = 1024**3
FULL = ALL_LAYERS


@dataclass(frozen=True)
class SpecPlan:
    """Speculative decoding for a candidate: MTP heads or a draft model, and its figures."""

    kind: Literal["mtp", "draft"]
    n_max: int
    acceptance: float
    source: str
    correction: float = 1.0  # measured / predicted speed-up on the measured box (MTP)
    draft: DraftRule | None = None
    draft_artefact: ModelArtefact | None = None

    def request_fields(self) -> dict[str, object]:
        """EstimateRequest fields that turn it on."""
        fields: dict[str, object] = {"spec_type": self.kind, "spec_draft_n": self.n_max,
                                     "spec_acceptance": self.acceptance}  # fmt: skip
        if self.draft is not None:
            fields |= {"draft_model": self.draft.draft, "draft_quant": self.draft.quant}
        return fields

    def calibrated(self, tg: float, plain: float) -> float:
        """The estimator's speculative tok/s, its gain over `plain` scaled by the correction."""
        return plain + (tg - plain) * self.correction if tg > plain else tg


@dataclass
class Candidate:
    artefact: ModelArtefact
    entry: ModelEntry
    engine: EngineEntry
    backend: str
    ctx: int  # per slot
    kv: str
    score: Score = UNSCORED  # quality for the workload (prescore), speed added once evaluated
    points: float = 0.0  # backend preference (policy + quirks), set at prescore
    repack: bool = True  # false where a quirk serves it with --no-repack, set at prescore
    reject: str | None = None
    estimate: Estimate | None = None
    placement: Placement = field(default_factory=lambda: Placement(ngl=0))
    tg: float = 0.0
    tg_range: tuple[float, float] = (0.0, 0.0)
    pp: float = 0.0
    pp_range: tuple[float, float] = (0.0, 0.0)
    # physics: no figure for this candidate may pass these (None: no roofline to say)
    tg_ceiling: float | None = None
    pp_ceiling: float | None = None
    memory: int = 0
    basis: list[str] = field(default_factory=list)
    evaluated: bool = False
    speculative: SpecPlan | None = None  # MTP or a draft model (speculative.py)
    engine_note: str | None = None  # why this engine over the other at like bits (mlx.py)

    @property
    def rank(self) -> float:
        return self.score.value + self.points

    @property
    def label(self) -> str:
        return f"{self.entry.id} {self.artefact.quant} {self.engine.name}/{self.backend}"
