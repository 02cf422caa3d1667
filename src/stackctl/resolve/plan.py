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
from stackctl.models.catalog import Catalog
from stackctl.models.hardware import HardwareProfile
from stackctl.models.resolved import ResolvedStack
from stackctl.models.spec import StackSpec
from stackctl.resolve.build import build_resolved
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.context import grow_context
from stackctl.resolve.enumerate import enumerate_candidates
from stackctl.resolve.evaluate import evaluate, meets_floor, relax_floor, walk
from stackctl.resolve.evidence import evidence_for
from stackctl.resolve.mlx import choose_engines
from stackctl.resolve.place import decode_at
from stackctl.resolve.prescore import prescore
from stackctl.resolve.quirks import raise_gtt_budget
from stackctl.resolve.screen import screen_all
from stackctl.resolve.session import Loaded, Session

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
class Resolver(Loaded):
    """Everything resolution reads, loaded once; `resolve` may be called for many hosts."""

    def resolve(
        self, spec: StackSpec, hardware: HardwareProfile, *, top: int = DEFAULT_TOP
    ) -> Resolution:
        return resolve_plan(spec, hardware, self, top=top)


def make_resolver(catalog: Catalog) -> Resolver:
    from stackctl.estimate import load_estimate_catalog
    from stackctl.policy import load_policy
    from stackctl.resources import catalog_dir

    root = catalog_dir()
    policy, estimates = load_policy(root), load_estimate_catalog(root)
    # prescore's evidence, kept between runs under both catalogs' content keys
    evidence_for(policy, estimates.models, estimates.source_key())
    return Resolver(catalog, policy, Session(estimates))


def resolve_stack(spec: StackSpec, hardware: HardwareProfile, catalog: Catalog) -> ResolvedStack:
    """The stage contract: one resolved stack (see `resolve_plan` for the alternatives)."""
    from stackctl.image.pins import with_image_pins

    return with_image_pins(make_resolver(catalog).resolve(spec, hardware).resolved, catalog)


def candidates_in_score_order(
    spec: StackSpec, hardware: HardwareProfile, loaded: Loaded, *, context: int
) -> list[Candidate]:
    """Stages 1-3: enumerate, screen, prescore."""
    cands = enumerate_candidates(hardware, loaded, context=context)
    screen_all(cands, spec, hardware, loaded.policy)
    choose_engines(cands, {e.name: e for e in loaded.catalog.engines})
    return prescore(cands, spec, hardware, loaded.policy, loaded.session.estimates.models)


def resolve_plan(
    spec: StackSpec, hardware: HardwareProfile, resolver: Resolver, *, top: int = DEFAULT_TOP
) -> Resolution:
    """The stages in order: enumerate -> screen -> prescore -> evaluate in score order
    (placement, speculative) with the final score -> context for the chosen -> build."""
    _check_pin_known(spec, resolver.catalog)
    planned, gtt = raise_gtt_budget(hardware, resolver.policy)
    calls_before = resolver.session.calls
    cands = candidates_in_score_order(spec, planned, resolver, context=spec.context)
    accepted = walk(spec, planned, resolver, cands, top)
    relaxed: list[str] = []
    if not accepted:
        pick, why = relax_floor(spec, cands)
        if pick is None:
            raise _no_stack(spec, hardware, resolver, cands)
        accepted, relaxed = [pick], [why]
    chosen = grow_context(
        accepted[0],
        spec,
        resolver.policy,
        evaluate=lambda t: evaluate(t, spec, planned, resolver),
        decode=lambda t, depth: decode_at(resolver.session, t, planned, spec.users, depth),
    )
    slow = [c for c in cands if c.evaluated and c.reject is None and not meets_floor(c, spec)]
    others = [c for c in accepted[1:] + slow if c is not chosen]
    rejected = [c for c in cands if c.reject is not None]
    resolved = build_resolved(
        spec, hardware, planned, chosen, resolver.policy, gtt=gtt, relaxed=relaxed
    )
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
    # what the box could not do first; what the stack ruled out (pins, preferences) after
    ruled_out = ("pin:", "preference:")
    rejected = sorted((c for c in cands if c.reject),
                      key=lambda c: (c.reject or "").startswith(ruled_out))  # fmt: skip
    details = [f"{c.label}: {c.reject}" for c in rejected][:12]
    what = f"{spec.workload} with {spec.context} tokens for {spec.users} user(s)"
    if spec.pin:
        what = f"pinned {spec.pin.model} {spec.pin.quant or ''}".rstrip() + f" ({what})"
    return ResolutionError(
        f"stack '{spec.name}' cannot run on '{hardware.name}': {what}",
        details=details,
        hint=_closest(spec, hardware, resolver)
        or "no catalog model fits this box even at a small context",
    )
