"""Quality evidence per model: the measured figures, and the missing ones imputed from the
model's other evidence, with their uncertainty.

Each evidence item of catalog/quality.yaml (a hard benchmark, the arena's open-model rating, an
aggregate index) is put on one scale: z = (figure - catalog mean) / catalog sd, over the models
measured on it. log2 of total and of active parameters are predictors every model has. A
missing item is predicted from each item the model does have by a least-squares line fitted
over the models that have both; the predictions are averaged, weighted by 1 / residual
variance, and the mean residual of the model's family on that item (its siblings measured on
it, shrunk by n / (n + 1)) is added: style and benchmark habits run in families. The imputed
figure keeps the residual sd as its uncertainty. It is the central estimate, never a penalty.

Only figures in the model's served mode count (thinking with thinking, like for like); a figure
in the other mode is shown, not used. Pure functions; `evidence_for` memoises per policy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from stackctl.estimate.catalog import ModelEntry
from stackctl.models.policy import Policy, QualityFile

PARAMS_TOTAL = "log2_params_total"
PARAMS_ACTIVE = "log2_params_active"
MIN_PAIRS = 4  # models measured on both items before a line between them is trusted
MIN_MEASURED = 3  # models measured on an item before it has a catalog mean and sd
BROAD = 12  # an item measured on this many models is broad: its imputed figure predicts others


@dataclass(frozen=True)
class Figure:
    value: float  # in the item's own unit
    z: float
    sd_z: float  # 0 for a measured figure
    imputed: bool
    basis: str


@dataclass(frozen=True)
class Line:
    intercept: float
    slope: float
    resid_sd: float
    n: int
    low: float  # the predictor's range over the fitted models: no extrapolation past it
    high: float


@dataclass(frozen=True)
class Evidence:
    figures: dict[str, dict[str, Figure]]  # model id -> item -> figure
    stats: dict[str, tuple[float, float, int]]  # item -> (mean, sd, n measured)

    def item(self, model_id: str, item: str) -> Figure | None:
        return self.figures.get(model_id, {}).get(item)


def params_of(model_id: str, entry: ModelEntry | None, quality: QualityFile) -> tuple[float, float]:
    """(total, active) in billions, 0 where unknown; quality.yaml params_b fills the gaps."""
    extra = quality.models.get(model_id)
    total = (entry.params_total if entry else None) or (extra.params_b if extra else None) or 0.0
    dense = entry is not None and entry.moe is None
    active = (
        (entry.params_active if entry else None)
        or (extra.params_active_b if extra else None)
        or (total if dense else 0.0)
    )
    return float(total), float(active)


def measured(
    quality: QualityFile, drop: tuple[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """Served-mode figures per model and item (`drop`: one (model, item) left out)."""
    out: dict[str, dict[str, float]] = {}
    for model_id, mq in quality.models.items():
        for item, fig in mq.benchmarks.items():
            if item not in quality.items or (fig.mode or mq.mode) != mq.mode:
                continue
            if drop == (model_id, item):
                continue
            out.setdefault(model_id, {})[item] = fig.value
    return out


def _stats(raw: Mapping[str, Mapping[str, float]]) -> dict[str, tuple[float, float, int]]:
    by_item: dict[str, list[float]] = {}
    for figures in raw.values():
        for item, value in figures.items():
            by_item.setdefault(item, []).append(value)
    return {
        item: (statistics.fmean(v), statistics.stdev(v), len(v))
        for item, v in by_item.items()
        if len(v) >= MIN_MEASURED and statistics.stdev(v) > 0
    }


def _fit(xs: list[float], ys: list[float], floor_slope: float | None = None) -> Line | None:
    n = len(xs)
    if n < MIN_PAIRS:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if floor_slope is not None:
        slope = max(slope, floor_slope)
    intercept = my - slope * mx
    rss = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    # residual sd, widened for the line's own uncertainty at a typical point
    sd = math.sqrt(rss / (n - 2)) * math.sqrt(1 + 1 / n) if n > 2 else 1.0
    return Line(intercept, slope, max(sd, 0.05), n, min(xs), max(xs))


@dataclass
class _Table:
    z: dict[str, dict[str, float]]  # model -> item or params predictor -> z
    family: dict[str, str]
    lines: dict[tuple[str, str], Line | None]

    def line(self, target: str, predictor: str) -> Line | None:
        key = (target, predictor)
        if key not in self.lines:
            pairs = [(zs[predictor], zs[target]) for zs in self.z.values()
                     if predictor in zs and target in zs]  # fmt: skip
            # a larger model of a family is not worse: a size line never slopes down (policy)
            floor = 0.0 if predictor.startswith("log2_params") else None
            self.lines[key] = _fit([p[0] for p in pairs], [p[1] for p in pairs], floor)
        return self.lines[key]

    def predict(
        self, model_id: str, target: str, imputed: Mapping[str, tuple[float, float]] | None = None
    ) -> tuple[float, float, list[str]] | None:
        """z of `target` from the model's other evidence: (z, sd, predictors used). `imputed`
        adds predictors that are themselves imputed (z, sd): their sd widens the prediction."""
        known = {k: (x, 0.0) for k, x in self.z[model_id].items()}
        preds: list[tuple[float, float, str]] = []
        for predictor, (x, x_sd) in sorted({**(imputed or {}), **known}.items()):
            line = self.line(target, predictor) if predictor != target else None
            if line is not None:
                # past the fitted range the line is less sure: widen by the slope x the gap
                gap = max(line.low - x, x - line.high, 0.0)
                sd = math.hypot(line.resid_sd, line.slope * x_sd, line.slope * gap / 2)
                preds.append((line.intercept + line.slope * x, sd, predictor))
        if not preds:
            return None
        weights = [1 / sd**2 for _, sd, _ in preds]
        total = sum(weights)
        z = sum(w * p for w, (p, _, _) in zip(weights, preds, strict=True)) / total
        # predictors are correlated: keep the weighted sd, not the independent-sum one
        sd = sum(w * s for w, (_, s, _) in zip(weights, preds, strict=True)) / total
        return z, sd, [name for _, _, name in preds]

    def family_offset(self, model_id: str, target: str) -> tuple[float, int]:
        fam = self.family.get(model_id)
        residuals = []
        for other, zs in sorted(self.z.items()):
            if other == model_id or self.family.get(other) != fam or target not in zs:
                continue
            guess = self.predict(other, target)  # from its other evidence (lines in-sample)
            if guess is not None:
                residuals.append(zs[target] - guess[0])
        if not residuals:
            return 0.0, 0
        n = len(residuals)
        return statistics.fmean(residuals) * n / (n + 1), n


def _param_z(params: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {m: {} for m in params}
    for index, name in ((0, PARAMS_TOTAL), (1, PARAMS_ACTIVE)):
        logs = {m: math.log2(p[index]) for m, p in params.items() if p[index] > 0}
        if len(logs) < MIN_MEASURED:
            continue
        mean, sd = statistics.fmean(logs.values()), statistics.stdev(logs.values())
        for m, v in logs.items():
            out[m][name] = (v - mean) / sd
    return out


def _impute(
    table: _Table, model_id: str, stats: Mapping[str, tuple[float, float, int]],
    imputed: Mapping[str, tuple[float, float]] | None,
) -> dict[str, Figure]:  # fmt: skip
    """Pass-1 figures of the items the model lacks (z and sd only)."""
    out = {}
    for item in stats:
        if item in table.z[model_id]:
            continue
        guess = table.predict(model_id, item, imputed)
        if guess is not None:
            out[item] = Figure(0.0, guess[0], guess[1], True, "")
    return out


def _label(predictors: list[str]) -> str:
    names = ["params" if p.startswith("log2_params") else p for p in predictors]
    return ", ".join(dict.fromkeys(names))


def build_evidence(
    quality: QualityFile,
    models: Mapping[str, ModelEntry],
    drop: tuple[str, str] | None = None,
) -> Evidence:
    """Every catalog model's figure on every item with a catalog mean: measured or imputed."""
    raw = measured(quality, drop)
    stats = _stats(raw)
    ids = sorted(set(models) | set(quality.models))
    params = {m: params_of(m, models.get(m), quality) for m in ids}
    z = _param_z(params)
    for m in ids:
        for item, value in raw.get(m, {}).items():
            if item in stats:
                mean, sd, _ = stats[item]
                z[m][item] = (value - mean) / sd
    families = {m: e.family for m, e in models.items()}
    table = _Table(z, families, {})
    broad = {item for item, (_, _, n) in stats.items() if n >= BROAD}
    # pass 1: from measured evidence only; pass 2 adds the broad items imputed in pass 1, so a
    # model measured on little is placed by where its broad items would be (not at the mean of
    # the few strong models a narrow benchmark has figures for)
    first = {m: _impute(table, m, stats, None) for m in ids}
    figures: dict[str, dict[str, Figure]] = {}
    for m in ids:
        extra = {k: (f.z, f.sd_z) for k, f in first[m].items() if k in broad}
        mine: dict[str, Figure] = {}
        for item, (mean, sd, _) in stats.items():
            if item in z[m]:
                mine[item] = Figure(raw[m][item], z[m][item], 0.0, False, "")
                continue
            # a broad item is predicted from measured evidence; a narrow one also from the
            # broad items imputed in pass 1
            guess = table.predict(m, item, None if item in broad else extra)
            if guess is None:
                continue
            offset, siblings = table.family_offset(m, item)
            zz = guess[0] + offset
            bounds = quality.items[item].bounds
            if bounds is not None:  # a percentage stays a percentage
                zz = (min(max(mean + sd * zz, bounds[0]), bounds[1]) - mean) / sd
            basis = f"from {_label(guess[2])}"
            if siblings:
                basis += f"; family {families.get(m)} {offset:+.2f} sd ({siblings} measured)"
            mine[item] = Figure(mean + sd * zz, zz, guess[1], True, basis)
        figures[m] = mine
    return Evidence(figures, stats)


_MEMO: dict[int, tuple[Policy, Mapping[str, ModelEntry], Evidence]] = {}


def evidence_for(
    policy: Policy, models: Mapping[str, ModelEntry], source: str | None = None
) -> Evidence:
    """`build_evidence` once per loaded policy and model catalog; `source`: the content key of
    the models' catalog files, under which (with the policy's) it is also kept between runs."""
    hit = _MEMO.get(id(policy))
    if hit is not None and hit[0] is policy and hit[1] is models:
        return hit[2]
    from stackctl.loadcache import cached_part

    key = policy.source_key()
    both = f"{key}+{source}" if key and source else None
    ev = cached_part(
        "evidence", "evidence", both, lambda: build_evidence(policy.quality, models), Evidence
    )
    _MEMO[id(policy)] = (policy, models, ev)
    return ev
