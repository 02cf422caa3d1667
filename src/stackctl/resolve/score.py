"""Quality score of a (model, quant) for a workload, from catalog/quality.yaml and
catalog/quants_quality.yaml. Pure functions; every term comes back with its basis in words."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from stackctl.estimate.catalog import ModelEntry
from stackctl.models.catalog import TensorMix
from stackctl.models.policy import Policy, QualityFile
from stackctl.resolve.evidence import Evidence, Figure


@dataclass(frozen=True)
class Score:
    value: float
    basis: tuple[str, ...]
    # the value's terms by name (evidence, size, quant, speed...), so that a plan can say which
    # term decided between two candidates
    parts: tuple[tuple[str, float], ...] = ()


UNSCORED = Score(0.0, ("not scored yet",))


def is_moe(entry: ModelEntry) -> bool:
    return entry.moe is not None


def params_b(entry: ModelEntry, policy: Policy) -> tuple[float | None, str]:
    """Total parameters in billions and where the figure comes from."""
    if entry.params_total:
        return entry.params_total, "catalog/models.yaml params_total"
    extra = policy.quality.models.get(entry.id)
    if extra and extra.params_b:
        return extra.params_b, f"catalog/quality.yaml ({extra.params_source})"
    return None, "unknown"


def effective_params(entry: ModelEntry, policy: Policy) -> tuple[float | None, str]:
    total, where = params_b(entry, policy)
    if total is None:
        return None, "parameter count unknown"
    if is_moe(entry) and entry.params_active:
        eff = math.sqrt(total * entry.params_active)
        return eff, (
            f"MoE {total:g}B total / {entry.params_active:g}B active -> "
            f"{eff:.1f}B effective ({policy.quality.rule.moe_effective}, heuristic; {where})"
        )
    return total, f"dense {total:g}B ({where})"


def quant_loss(quant: str, family: str, policy: Policy) -> tuple[float, str]:
    """Perplexity increase in percent for a quant, with the fallback rule where none is known."""
    table = policy.quants.quants
    row = table.get(quant)
    if row is not None and family in row.native_for:
        return 0.0, f"{quant}: the release precision of {family} ({row.source})"
    if row is not None and row.ppl_delta_pct is not None and not row.native_for:
        return row.ppl_delta_pct, f"{quant}: +{row.ppl_delta_pct:g}% perplexity ({row.source})"
    bpw = row.bpw if row is not None else 0.0
    lower = [
        (r.bpw, name, r.ppl_delta_pct)
        for name, r in table.items()
        if r.ppl_delta_pct is not None and r.bpw <= max(bpw, 0.0) and not r.native_for
    ]
    if not lower:
        worst = max(
            (r.ppl_delta_pct or 0.0, n) for n, r in table.items() if r.ppl_delta_pct is not None
        )
        return worst[0], f"{quant}: no published figure; worst known loss ({worst[1]}) assumed"
    _, name, pct = max(lower)
    assert pct is not None
    return pct, (
        f"{quant}: no published figure; nearest lower-bpw quant {name} (+{pct:g}%) assumed"
    )


def _figure_line(item: str, fig: Figure, quality: QualityFile, model_id: str, sd: float) -> str:
    if fig.imputed:
        return (f"{item}: no published figure; imputed ~{fig.value:.4g} +/- "
                f"{fig.sd_z * sd:.2g} ({fig.basis})")  # fmt: skip
    src = quality.models[model_id].benchmarks[item]
    date = src.date or quality.source_dates.get(src.source, "undated")
    return f"{item} {fig.value:g} ({src.source}, {date})"


def workload_quality(
    model_id: str, workload: str, policy: Policy, evidence: Evidence
) -> tuple[float, float, list[str]] | None:
    """Quality points for the workload from its evidence items, measured or imputed:
    50 + points_per_sd x the mean z, each item weighted by 1 / its variance (a measured figure
    has `measured_sd`, an imputed one adds its own sd) and by its share of its evidence family
    (hard benchmarks, human preference, aggregate index weigh alike), and the sd of that mean.
    None: no item of the workload has figures."""
    q = policy.quality
    weighted = total = 0.0
    lines: list[str] = []
    items = q.workloads[workload].benchmarks
    per_family = Counter(q.items[i].family for i in items if i in q.items)
    for item in items:
        fig = evidence.item(model_id, item)
        if fig is None:
            continue
        # each evidence family weighs alike, however many items it has (policy)
        share = 1 / per_family[q.items[item].family]
        weight = share / (q.measured_sd**2 + fig.sd_z**2)
        weighted += weight * fig.z
        total += weight
        lines.append(_figure_line(item, fig, q, model_id, evidence.stats[item][1]))
    if not total:
        return None
    return 50 + q.points_per_sd * weighted / total, q.points_per_sd / math.sqrt(total), lines


def mixed_quant_loss(mix: TensorMix, family: str, policy: Policy) -> tuple[float, str]:
    """A file of several quant types: each type's loss weighed by its share of the weights."""
    total = sum(mix.shares.values())
    loss = 0.0
    parts = []
    for quant, share in sorted(mix.shares.items(), key=lambda kv: -kv[1]):
        pct, _ = quant_loss(quant, family, policy)
        loss += pct * share / total
        parts.append(f"{share / total:.1%} {quant} (+{pct:g}%)")
    return loss, f"mixed file: {', '.join(parts)} = +{loss:.2f}% ({mix.source})"


def model_quality(entry: ModelEntry, workload: str, policy: Policy, evidence: Evidence) -> Score:
    """The model's quality for the workload in its served mode, before quant and speed."""
    rule = policy.quality.rule
    eff, eff_basis = effective_params(entry, policy)
    extra = policy.quality.models.get(entry.id)
    mode = extra.mode if extra else "non_thinking"
    measured = workload_quality(entry.id, workload, policy, evidence)
    if measured is None and eff is None:
        return Score(0.0, (f"{entry.id}: no evidence and {eff_basis}; scored 0",))
    size = 10 * math.log2(10 * eff) if eff else 0.0
    lines = [f"served mode: {mode.replace('_', '-')} (figures in that mode only)"]
    if measured is None:  # no evidence item for this workload: the size rule is the score
        base = size
        lines.append(f"size rule {size:.1f} ({eff_basis})")
        parts = [("size rule", size)]
    else:
        points, sd, item_lines = measured
        base = points + size * rule.size_weight
        parts = [("evidence", points), ("size", size * rule.size_weight)]
        per_sd = policy.quality.points_per_sd
        lines.append(f"evidence: {points:.1f} +/- {sd:.1f} points (50 + {per_sd:g} x the "
                     "weighted mean z over the catalog)")  # fmt: skip
        lines += item_lines
        lines.append(f"size tiebreak +{size * rule.size_weight:.1f} ({eff_basis})")
    verdict = extra.card_fit.get(workload) if extra else None
    card = rule.card_fit_points[verdict] if verdict else 0.0
    if verdict and extra:
        source = policy.quality.sources.get(extra.card or "", extra.card or "model card")
        lines.append(f"model card: {verdict.replace('_', ' ')} for {workload} {card:+g} ({source})")
    moe = policy.quality.workloads[workload].moe_penalty if is_moe(entry) else 0.0
    if moe:
        lines.append(f"MoE over long multi-turn {workload} context -{moe:g} (policy)")
    parts += [("model card", card), ("MoE", -moe)]
    return Score(round(base + card - moe, 2), tuple(lines), tuple(parts))


def quality_score(
    entry: ModelEntry,
    quant: str,
    workload: str,
    policy: Policy,
    evidence: Evidence,
    mix: TensorMix | None = None,
) -> Score:
    base = model_quality(entry, workload, policy, evidence)
    family = entry.family
    loss, loss_basis = (
        mixed_quant_loss(mix, family, policy) if mix else quant_loss(quant, family, policy)
    )
    scaling = policy.quants.size_scaling
    total, _ = params_b(entry, policy)
    if scaling is not None and total and loss:
        low, high = scaling.bounds
        factor = min(max((scaling.reference_params_b / total) ** scaling.exponent, low), high)
        loss *= factor
        loss_basis += f"; x{factor:.2f} for {total:g}B total params ({scaling.source})"
    penalty = loss * policy.quality.rule.points_per_pct
    return Score(
        round(base.value - penalty, 2),
        (*base.basis, f"quant -{penalty:.1f} ({loss_basis})"),
        (*base.parts, ("quant", -penalty)),
    )


def with_speed(score: Score, tg: float, floor: float, workload: str, policy: Policy) -> Score:
    """An interactive workload values speed above the floor: points per doubling, capped."""
    w = policy.quality.workloads[workload]
    if not w.speed_points_per_doubling or tg <= floor or floor <= 0:
        return score
    points = min(w.speed_points_cap, w.speed_points_per_doubling * math.log2(tg / floor))
    line = (
        f"speed ~{tg:.1f} tok/s, {tg / floor:.1f}x the {floor:g} floor: +{points:.1f} "
        f"({w.speed_points_per_doubling:g} per doubling, at most {w.speed_points_cap:g}; policy)"
    )
    return Score(
        round(score.value + points, 2), (*score.basis, line), (*score.parts, ("speed", points))
    )


def deciding_terms(lost: Score, won: Score, top: int = 2) -> str:
    """The terms that differ most between two scores, as "speed +0.2 vs +5.4": what decided."""
    ours, theirs = dict(lost.parts), dict(won.parts)
    gap = {n: abs(ours.get(n, 0.0) - theirs.get(n, 0.0)) for n in set(ours) | set(theirs)}
    # largest first; the name breaks ties, so that the line is the same on every run
    names = sorted((n for n in gap if gap[n] >= 0.05), key=lambda n: (-gap[n], n))[:top]
    return "; ".join(f"{n} {ours.get(n, 0.0):+.1f} vs {theirs.get(n, 0.0):+.1f}" for n in names)
