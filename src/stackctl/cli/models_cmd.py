"""`stackctl models`: every catalog model with its score for a workload and the score's basis,
its size and architecture, the files the catalog can lock, and with --fits the best file of it
that fits this (or the declared) box with its predicted speed."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.cli.output import print_json
from stackctl.cli.pipeline import add_stack_options, load_inputs
from stackctl.estimate.catalog import ModelEntry
from stackctl.models.catalog import ModelArtefact

GIB = 1024**3
WORKLOADS = ["agentic", "chat", "code", "extract"]
ATTENTION = {"F": "full", "S": "sliding-window", "A": "MLA", "L": "Gated DeltaNet",
             "M": "Mamba-2", "C": "short conv"}  # fmt: skip


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="list catalog models with their scores and files")
    add_stack_options(parser)
    parser.add_argument("--workload", choices=WORKLOADS, help="score for (default: the stack's)")
    parser.add_argument(
        "--fits", action="store_true", help="the best file that fits this or the declared box"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def attention_of(entry: ModelEntry) -> str:
    kinds = [ATTENTION[k] for k in dict.fromkeys(entry.layer_pattern) if k in ATTENTION]
    return " + ".join(kinds) if kinds else "none"


def _file(a: ModelArtefact) -> dict[str, Any]:
    return {"quant": a.quant, "engine": a.engine, "repo": a.repo, "file": a.file,
            "parts": a.parts, "size": a.size, "revision": a.revision, "sha256": a.sha256,
            "verified": a.sha256 is not None, "url": a.url}  # fmt: skip


def _fit(fit: Any) -> dict[str, Any] | None:
    c = fit.candidate
    if c is None:
        return None
    return {
        "quant": c.artefact.quant, "engine": c.engine.name, "backend": c.backend,
        "context": c.ctx, "tg_tps": round(c.tg, 1),
        "tg_tps_range": [round(c.tg_range[0], 1), round(c.tg_range[1], 1)],
        "pp_tps": round(c.pp, 1), "memory_gib": round(c.memory / GIB, 1),
        "placement": c.placement.model_dump(mode="json"),
        "speculative": c.speculative.kind if c.speculative else "none",
        "meets_floor": fit.meets_floor, "score_with_quant": c.score.value,
    }  # fmt: skip


def models_summary(args: argparse.Namespace) -> dict[str, Any]:
    from stackctl.catalog import load_catalog
    from stackctl.resolve import make_resolver
    from stackctl.resolve.evidence import evidence_for, params_of
    from stackctl.resolve.fits import best_fits
    from stackctl.resolve.score import model_quality
    from stackctl.resources import catalog_dir

    inputs = load_inputs(args) if args.fits else None
    catalog = inputs.catalog if inputs else load_catalog(catalog_dir())
    resolver = make_resolver(catalog)
    spec = inputs.spec if inputs else None
    workload = args.workload or (spec.workload if spec else "chat")
    models = resolver.session.estimates.models
    evidence = evidence_for(resolver.policy, models)
    fits = {}
    if inputs is not None and spec is not None:
        spec = spec.model_copy(update={"workload": workload})
        fits = best_fits(spec, inputs.hardware, resolver)
    rows: list[dict[str, Any]] = []
    for model_id, entry in models.items():
        score = model_quality(entry, workload, resolver.policy, evidence)
        total, active = params_of(model_id, entry, resolver.policy.quality)
        extra = resolver.policy.quality.models.get(model_id)
        fit = fits.get(model_id)
        rows.append({
            "model": model_id, "name": entry.name, "score": score.value,
            "basis": list(score.basis), "mode": extra.mode if extra else "non_thinking",
            "params_total_b": total or None, "params_active_b": active or None,
            "architecture": entry.gguf_arch, "moe": entry.moe is not None,
            "attention": attention_of(entry), "ctx_native": entry.ctx_native,
            "files": [_file(a) for a in catalog.artefacts if a.model == model_id],
            "fits": _fit(fit) if fit else None,
            "fits_note": fit.why_not if fit and fit.candidate is None else None,
        })  # fmt: skip
    rows.sort(key=lambda r: (-r["score"], r["model"]))
    return {
        "workload": workload,
        "hardware": inputs.hardware.name if inputs else None,
        "models": rows,
    }


def describe(summary: dict[str, Any]) -> list[str]:
    where = f" on {summary['hardware']}" if summary["hardware"] else ""
    lines = [f"catalog models by {summary['workload']} score{where}:"]
    for r in summary["models"]:
        active = f"/{r['params_active_b']:g}B active" if r["moe"] and r["params_active_b"] else ""
        size = f"{r['params_total_b']:g}B{active}" if r["params_total_b"] else "?B"
        quants = ", ".join(f["quant"] for f in r["files"]) or "no file"
        line = (f"  {r['score']:6.1f}  {r['model']:30s} {size:16s} {r['attention']:24s} "
                f"[{quants}]")  # fmt: skip
        fit = r["fits"]
        if fit:
            floor = "" if fit["meets_floor"] else ", below the floor"
            line += (f"  fits: {fit['quant']} {fit['engine']}/{fit['backend']} "
                     f"~{fit['tg_tps']:g} tok/s{floor}")  # fmt: skip
        elif r["fits_note"]:
            line += "  does not fit"
        lines.append(line)
    return lines


def run(args: argparse.Namespace) -> int:
    summary = models_summary(args)
    if args.json:
        print_json(summary)
    else:
        print("\n".join(describe(summary)))
    return 0
