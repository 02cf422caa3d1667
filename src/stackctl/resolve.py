"""Resolve intent + hardware into one concrete stack, explaining each choice.

Candidates are model artefact x engine x backend (x placement, context, KV type and
speculative decoding, which follow from the data per candidate). Each is screened against
the stack's hard constraints, scored on quality for the workload (catalog/quality.yaml minus
quant degradation), and evaluated with the estimator in score order until the best ones that
fit and meet the speed floor are known. When none meets the floor, the floor is relaxed and
the plan says so; hard constraints (pins, preferences, context, fit) are never relaxed: the
error names the closest stack that would work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackctl.errors import ResolutionError
from stackctl.estimate.catalog import ModelEntry
from stackctl.models.catalog import Catalog, EngineEntry, ModelArtefact
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy
from stackctl.models.resolved import ResolvedStack
from stackctl.models.spec import StackSpec
from stackctl.resolve_build import build_resolved
from stackctl.resolve_context import grow_context, kv_type
from stackctl.resolve_eval import (
    Candidate,
    Session,
    decode_at,
    place_ds4,
    place_llamacpp,
)
from stackctl.resolve_quirks import backend_points, matching_quirks, raise_gtt_budget, shape_of
from stackctl.resolve_score import is_moe, params_b, quality_score, with_speed
from stackctl.resolve_speculative import try_speculative

GIB = 1024**3
DEFAULT_TOP = 3


@dataclass
class Resolution:
    resolved: ResolvedStack
    chosen: Candidate
    alternatives: list[Candidate]
    rejected: list[Candidate]
    not_evaluated: int
    estimate_calls: int
    relaxed: list[str] = field(default_factory=list)


@dataclass
class Resolver:
    """Everything resolution reads, loaded once; `resolve` may be called for many hosts."""

    catalog: Catalog
    policy: Policy
    session: Session

    def resolve(
        self, spec: StackSpec, hardware: HardwareProfile, *, top: int = DEFAULT_TOP
    ) -> Resolution:
        return resolve_plan(spec, hardware, self, top=top)


def make_resolver(catalog: Catalog) -> Resolver:
    from stackctl.estimate import load_estimate_catalog
    from stackctl.policy import load_policy
    from stackctl.resources import catalog_dir

    root = catalog_dir()
    return Resolver(catalog, load_policy(root), Session(load_estimate_catalog(root)))


def resolve_stack(spec: StackSpec, hardware: HardwareProfile, catalog: Catalog) -> ResolvedStack:
    """The stage contract: one resolved stack (see `resolve_plan` for the alternatives)."""
    from stackctl.image.pins import with_image_pins

    return with_image_pins(make_resolver(catalog).resolve(spec, hardware).resolved, catalog)


def _backends(hardware: HardwareProfile, engine: EngineEntry, policy: Policy) -> list[str]:
    if not hardware.accelerators:
        return ["cpu"] if "cpu" in engine.backends else []
    vendor = hardware.accelerators[0].vendor
    wanted = policy.runtime.backends_by_vendor.get(vendor, [])
    return [b for b in wanted if b in engine.backends]


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


def _screen(c: Candidate, spec: StackSpec, hardware: HardwareProfile, policy: Policy) -> None:
    """Hard constraints that need no estimate."""
    reason = _pin_reason(spec, c.artefact, c.backend) or _preference_reason(
        spec, c.entry, c.artefact
    )
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


def _points(hardware: HardwareProfile, entry: ModelEntry, backend: str, engine: str,
            policy: Policy) -> float:  # fmt: skip
    shape = shape_of(hardware, backend=backend, moe=is_moe(entry), speculative="none",
                     engine=engine)  # fmt: skip
    quirks = matching_quirks(policy, shape)
    return policy.runtime.backend_points.get(backend, 0.0) + backend_points(quirks, backend)


def enumerate_candidates(
    spec: StackSpec, hardware: HardwareProfile, resolver: Resolver, *, context: int
) -> list[Candidate]:
    engines = {e.name: e for e in resolver.catalog.engines}
    models = resolver.session.estimates.models
    out: list[Candidate] = []
    for artefact in resolver.catalog.artefacts:
        entry = models.get(artefact.model)
        engine = engines.get(artefact.engine)
        if entry is None or engine is None:
            continue
        if engine.models is not None and entry.id not in engine.models:
            continue
        score = quality_score(entry, artefact.quant, spec.workload, resolver.policy,
                              artefact.tensor_mix)  # fmt: skip
        for backend in _backends(hardware, engine, resolver.policy):
            c = Candidate(
                artefact=artefact,
                entry=entry,
                engine=engine,
                backend=backend,
                ctx=context,
                kv=kv_type(context, resolver.policy),
                score=score,
                points=_points(hardware, entry, backend, engine.name, resolver.policy),
            )
            _screen(c, spec, hardware, resolver.policy)
            out.append(c)
    out.sort(key=lambda c: (-c.rank, c.entry.id, c.artefact.quant, c.backend))
    return out


def _evaluate(c: Candidate, spec: StackSpec, hardware: HardwareProfile, resolver: Resolver) -> None:
    if c.engine.name == "ds4":
        place_ds4(c, hardware, resolver.policy, spec.users)
    else:
        place_llamacpp(resolver.session, c, hardware, spec.users)
        try_speculative(c, hardware, spec.users, session=resolver.session,
                        policy=resolver.policy, catalog=resolver.catalog)  # fmt: skip


def _meets_floor(c: Candidate, spec: StackSpec) -> bool:
    return spec.pin is not None or c.tg >= spec.min_tg_tps


def _walk(
    spec: StackSpec, hardware: HardwareProfile, resolver: Resolver, cands: list[Candidate], top: int
) -> list[Candidate]:
    """Evaluate in score order until the best `top` + 1 that fit and meet the floor are known.

    Speed can add up to the workload's `speed_points_cap` once a candidate is evaluated, so
    the walk goes on while an unevaluated candidate could still overtake the last kept one."""
    accepted: list[Candidate] = []
    w = resolver.policy.quality.workloads[spec.workload]
    for c in cands:
        if c.reject is not None:
            continue
        if len(accepted) > top and c.rank + w.speed_points_cap <= accepted[top].rank:
            break
        _evaluate(c, spec, hardware, resolver)
        if c.reject is None and _meets_floor(c, spec):
            c.score = with_speed(c.score, c.tg, spec.min_tg_tps, spec.workload, resolver.policy)
            accepted.append(c)
            accepted.sort(key=lambda a: (-a.rank, a.entry.id, a.artefact.quant, a.backend))
    return accepted


def _relax_floor(spec: StackSpec, cands: list[Candidate]) -> tuple[Candidate | None, str]:
    fitting = [c for c in cands if c.evaluated and c.reject is None]
    if not fitting:
        return None, ""
    usable = [c for c in fitting if c.tg >= spec.min_tg_tps / 2]
    pick = max(usable, key=lambda c: c.rank) if usable else max(fitting, key=lambda c: c.tg)
    best = max(fitting, key=lambda c: c.rank)
    why = (
        f"speed floor relaxed: no candidate decodes {spec.min_tg_tps:g} tok/s on this box; "
        f"chose {pick.label} at ~{pick.tg:.1f} tok/s (you give up "
        f"{spec.min_tg_tps - pick.tg:.1f} tok/s of the floor"
    )
    if best is not pick:
        why += f"; the best-scored that fits, {best.label}, decodes only ~{best.tg:.1f} tok/s"
    return pick, why + ")"


def resolve_plan(
    spec: StackSpec, hardware: HardwareProfile, resolver: Resolver, *, top: int = DEFAULT_TOP
) -> Resolution:
    _check_pin_known(spec, resolver.catalog)
    planned, gtt = raise_gtt_budget(hardware, resolver.policy)
    calls_before = resolver.session.calls
    cands = enumerate_candidates(spec, planned, resolver, context=spec.context)
    accepted = _walk(spec, planned, resolver, cands, top)
    relaxed: list[str] = []
    if not accepted:
        pick, why = _relax_floor(spec, cands)
        if pick is None:
            raise _no_stack(spec, hardware, resolver, cands)
        accepted, relaxed = [pick], [why]
    chosen = grow_context(
        accepted[0],
        spec,
        resolver.policy,
        evaluate=lambda t: _evaluate(t, spec, planned, resolver),
        decode=lambda t, depth: decode_at(resolver.session, t, planned, spec.users, depth),
    )
    slow = [c for c in cands if c.evaluated and c.reject is None and not _meets_floor(c, spec)]
    others = [c for c in accepted[1:] + slow if c is not chosen]
    rejected = [c for c in cands if c.reject is not None]
    resolved = build_resolved(spec, hardware, planned, chosen, resolver, gtt=gtt, relaxed=relaxed)
    return Resolution(
        resolved=resolved,
        chosen=chosen,
        alternatives=sorted(others, key=lambda c: -c.rank)[:top],
        rejected=rejected,
        not_evaluated=sum(1 for c in cands if not c.evaluated and c.reject is None),
        estimate_calls=resolver.session.calls - calls_before,
        relaxed=relaxed,
    )


def _check_pin_known(spec: StackSpec, catalog: Catalog) -> None:
    pin = spec.pin
    if pin is None:
        return
    if any(a.model == pin.model and (pin.quant is None or a.quant == pin.quant)
           for a in catalog.artefacts):  # fmt: skip
        return
    known = sorted({f"{a.model} {a.quant}" for a in catalog.artefacts})
    raise ResolutionError(
        f"stack '{spec.name}' pins {pin.model} {pin.quant or ''}".rstrip()
        + ", which the catalog has no file for",
        hint="catalog models with files: " + ", ".join(known),
    )


def _closest(spec: StackSpec, hardware: HardwareProfile, resolver: Resolver) -> str | None:
    """The nearest intent that works: the pin dropped, or a smaller context."""
    trials: list[StackSpec] = []
    if spec.pin is not None:
        trials.append(spec.model_copy(update={"pin": None}))
    ctx = spec.context // 2
    while ctx >= 2048:
        trials.append(spec.model_copy(update={"context": ctx, "pin": None}))
        ctx //= 2
    for trial in trials:
        try:
            r = resolve_plan(trial, hardware, resolver, top=0)
        except ResolutionError:
            continue
        what = "without the pin" if trial.context == spec.context else f"at context {trial.context}"
        return f"closest that works: {r.chosen.label} {what} (~{r.chosen.tg:.1f} tok/s)"
    return None


def _no_stack(
    spec: StackSpec, hardware: HardwareProfile, resolver: Resolver, cands: list[Candidate]
) -> ResolutionError:
    details = [f"{c.label}: {c.reject}" for c in cands if c.reject][:12]
    what = f"{spec.workload} with {spec.context} tokens for {spec.users} user(s)"
    if spec.pin:
        what = f"pinned {spec.pin.model} {spec.pin.quant or ''}".rstrip() + f" ({what})"
    return ResolutionError(
        f"stack '{spec.name}' cannot run on '{hardware.name}': {what}",
        details=details,
        hint=_closest(spec, hardware, resolver)
        or "no catalog model fits this box even at a small context",
    )
