"""`stackctl plan`: what would be deployed and why, with predicted memory and speed."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.cli.output import print_json
from stackctl.cli.pipeline import add_stack_options, load_inputs
from stackctl.models.resolved import ResolvedStack
from stackctl.resolve import resolve_stack


def register(sub: Any) -> None:
    parser = sub.add_parser("plan", help="show what would be deployed and why")
    add_stack_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def plan_summary(resolved: ResolvedStack) -> dict[str, Any]:
    r = resolved
    return {
        "stack": r.stack,
        "hardware": r.hardware,
        "chosen": {
            "model": r.model.id,
            "quant": r.model.quant,
            "file": r.model.artefact.file,
            "engine": r.engine.name,
            "engine_version": r.engine.version,
            "backend": r.engine.backend,
            "context": r.runtime.context,
            "cache_type_k": r.runtime.cache_type_k,
            "cache_type_v": r.runtime.cache_type_v,
            "flags": list(r.runtime.server_args),
            "predicted": r.predicted.model_dump(mode="json"),
        },
        "reasons": list(r.reasons),
    }


def describe(resolved: ResolvedStack) -> list[str]:
    r, p = resolved, resolved.predicted
    lines = [
        f"stack {r.stack} on {r.hardware}",
        f"  model    {r.model.id} {r.model.quant} ({r.model.artefact.file}, "
        f"{(r.model.artefact.size or 0) / 2**20:.0f} MiB)",
        f"  engine   llama.cpp {r.engine.version}, backend {r.engine.backend}",
        f"  serve    http://{r.runtime.host}:{r.runtime.port}  context {r.runtime.context}, "
        f"{r.runtime.parallel} slot(s), {r.runtime.threads} threads",
        f"  memory   {p.memory_total_bytes / 2**20:.0f} MiB predicted",
        f"  decode   {p.tg_tps:.1f} tok/s predicted (range {p.tg_tps_range[0]:.1f}-"
        f"{p.tg_tps_range[1]:.1f})",
        f"  prefill  {p.pp_tps:.0f} tok/s predicted (range {p.pp_tps_range[0]:.0f}-"
        f"{p.pp_tps_range[1]:.0f})",
        "why:",
    ]
    lines += [f"  - {reason}" for reason in r.reasons]
    lines.append("basis of the prediction:")
    lines += [f"  - {basis}" for basis in p.basis]
    return lines


def run(args: argparse.Namespace) -> int:
    inputs = load_inputs(args)
    resolved = resolve_stack(inputs.spec, inputs.hardware, inputs.catalog)
    if args.json:
        print_json(plan_summary(resolved))
    else:
        print("\n".join(describe(resolved)))
    return 0
