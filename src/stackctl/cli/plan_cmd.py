"""`stackctl plan`: what would be deployed and why, with predicted memory and speed."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.cli.output import ceiling_note, print_json
from stackctl.cli.pipeline import add_stack_options, load_inputs
from stackctl.models.resolved import ResolvedStack


def register(sub: Any) -> None:
    parser = sub.add_parser("plan", help="show what would be deployed and why")
    add_stack_options(parser)
    parser.add_argument(
        "--workload", choices=["agentic", "chat", "code", "extract"], help="override the stack's"
    )
    parser.add_argument("--top", type=int, default=3, metavar="N", help="alternatives to show")
    parser.add_argument(
        "--explain", action="store_true", help="also list every rejected candidate and why"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def chosen_summary(r: ResolvedStack) -> dict[str, Any]:
    return {
        "model": r.model.id,
        "quant": r.model.quant,
        "file": r.model.artefact.file,
        "engine": r.engine.name,
        "engine_version": r.engine.version,
        "backend": r.engine.backend,
        "context": r.runtime.context,
        "cache_type_k": r.runtime.cache_type_k,
        "cache_type_v": r.runtime.cache_type_v,
        "placement": r.placement.model_dump(mode="json"),
        "speculative": {
            "kind": r.speculative.kind,
            "draft_model": r.speculative.draft_model,
        },
        "flags": list(r.runtime.server_args),
        "predicted": r.predicted.model_dump(mode="json"),
        "quirks_applied": [q.id for q in r.quirks],
        "requirements": r.requirements.model_dump(mode="json"),
        "score": r.score,
    }


def plan_summary(resolved: ResolvedStack, resolution: Any = None) -> dict[str, Any]:
    r = resolved
    out: dict[str, Any] = {
        "stack": r.stack,
        "hardware": r.hardware,
        "chosen": chosen_summary(r),
        "alternatives": [],
        "rejected_count": 0,
        "relaxed": list(r.relaxed),
        "reasons": list(r.reasons),
    }
    if resolution is not None:
        out["alternatives"] = [_alternative(c, resolution) for c in resolution.alternatives]
        out["rejected_count"] = len(resolution.rejected)
        out["not_evaluated"] = resolution.not_evaluated
    return out


def _why_not(c: Any, chosen: Any) -> str:
    if c.reject:
        return str(c.reject)
    if c.tg < chosen.tg and c.rank > chosen.rank:
        return f"decodes ~{c.tg:.1f} tok/s, below the stack's floor"
    if c.score.value == chosen.score.value and c.backend != chosen.backend:
        return (
            f"same score; backend {chosen.backend} preferred over {c.backend} "
            "(catalog/runtime.yaml backend_points, quirks)"
        )
    from stackctl.resolve.score import deciding_terms

    terms = deciding_terms(c.score, chosen.score)
    return f"lower score ({c.score.value:.1f} vs {chosen.score.value:.1f}" + (
        f": {terms})" if terms else ")"
    )


def _alternative(c: Any, resolution: Any) -> dict[str, Any]:
    return {
        "model": c.entry.id,
        "quant": c.artefact.quant,
        "engine": c.engine.name,
        "backend": c.backend,
        "score": round(c.score.value, 2),
        "tg_tps": round(c.tg, 1),
        "why_not": _why_not(c, resolution.chosen),
    }


def describe(
    resolved: ResolvedStack, resolution: Any = None, *, explain: bool = False
) -> list[str]:
    r, p = resolved, resolved.predicted
    lines = [
        f"stack {r.stack} on {r.hardware}",
        f"  model    {r.model.id} {r.model.quant} ({r.model.artefact.file})",
        f"  engine   {r.engine.name} {r.engine.version}, backend {r.engine.backend}",
        f"  serve    http://{r.runtime.host}:{r.runtime.port}  context {r.runtime.context}, "
        f"{r.runtime.parallel} slot(s), "
        + (f"{r.runtime.threads} threads" if r.runtime.threads else "engine-default threads"),
        f"  memory   {p.memory_total_bytes / 2**20:.0f} MiB predicted",
        f"  decode   {p.tg_tps:.1f} tok/s predicted (range {p.tg_tps_range[0]:.1f}-"
        f"{p.tg_tps_range[1]:.1f}{ceiling_note(p.tg_tps_ceiling, 1)})",
        f"  prefill  {p.pp_tps:.0f} tok/s predicted (range {p.pp_tps_range[0]:.0f}-"
        f"{p.pp_tps_range[1]:.0f}{ceiling_note(p.pp_tps_ceiling, 0)})",
        f"  flags    {' '.join(r.runtime.server_args)}",
        "why:",
    ]
    lines += [f"  - {reason}" for reason in r.reasons]
    lines.append(f"score {r.score:.1f}:")
    lines += [f"  - {b}" for b in r.score_basis]
    if r.quirks:
        lines.append("quirks applied:")
        lines += [f"  - {q.id}: {q.summary} ({q.source})" for q in r.quirks]
    req = r.requirements
    if req.kernel_params or req.runtime or req.driver or req.kernel or req.firmware:
        lines.append("host requirements:")
        lines += [f"  - {k}: {v}" for k, v in _requirement_lines(r)]
    if resolution is not None:
        lines += _alternative_lines(resolution, explain=explain)
    lines.append("basis of the prediction:")
    lines += [f"  - {basis}" for basis in p.basis]
    return lines


def _requirement_lines(r: ResolvedStack) -> list[tuple[str, str]]:
    req = r.requirements
    rows = [(k, v) for k, v in req.runtime.items()]
    for name, value in (("driver", req.driver), ("kernel", req.kernel), ("firmware", req.firmware)):
        if value:
            rows.append((name, value))
    if req.kernel_params:
        rows.append(("kernel parameters", " ".join(req.kernel_params)))
    if req.packages:
        rows.append(("packages", " ".join(req.packages)))
    return rows


def _alternative_lines(resolution: Any, *, explain: bool) -> list[str]:
    lines = ["alternatives:"]
    for c in resolution.alternatives:
        backend = f" {c.points:+g} backend" if c.points else ""
        lines.append(
            f"  - {c.label} score {c.score.value:.1f}{backend}, ~{c.tg:.1f} tok/s: "
            f"{_why_not(c, resolution.chosen)}"
        )
    lines.append(
        f"rejected: {len(resolution.rejected)} candidate(s); "
        f"not evaluated (scored below the choice): {resolution.not_evaluated}"
    )
    if explain:
        lines += [f"  - {c.label}: {c.reject}" for c in resolution.rejected]
    elif resolution.rejected:
        lines.append("  (--explain lists them with reasons)")
    return lines


def run(args: argparse.Namespace) -> int:
    from stackctl.bench.feedback import feedback_lines, plan_feedback
    from stackctl.resolve import make_resolver

    inputs = load_inputs(args)
    spec = inputs.spec
    if args.workload:
        spec = spec.model_copy(update={"workload": args.workload})
    resolution = make_resolver(inputs.catalog).resolve(spec, inputs.hardware, top=args.top)
    # Measured figures first, then the user's calibration, then the public fit (bench issue).
    resolved, measured = plan_feedback(resolution.resolved, inputs.hardware)
    # What the profile could not know or assumed (a conservative variant, a typical bandwidth).
    notes = list(inputs.hardware.warnings)
    if args.json:
        print_json({**plan_summary(resolved, resolution), **measured, "hardware_notes": notes})
    else:
        lines = describe(resolved, resolution, explain=args.explain)
        lines += ["hardware notes:", *(f"  - {n}" for n in notes)] if notes else []
        print("\n".join(lines))
        print("\n".join(feedback_lines(measured)))
    return 0
