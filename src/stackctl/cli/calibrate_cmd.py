"""`stackctl calibrate`: fit efficiency factors on stored results for plans to use."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.bench.calibrate import fit, write_calibration
from stackctl.bench.models import BenchRow
from stackctl.bench.store import all_results, open_store
from stackctl.cli.output import print_json
from stackctl.errors import StackctlError


def register(sub: Any) -> None:
    parser = sub.add_parser("calibrate", help="fit per-hardware speed factors from stored results")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def predict_imported(row: BenchRow) -> float | None:
    """The public-fit prediction for an imported row on declared hardware, when it has one."""
    from stackctl.detect import declare_hardware
    from stackctl.estimate import estimate
    from stackctl.models.estimate import EstimateRequest

    if not (row.model and row.quant):
        return None
    try:
        hw = declare_hardware(
            gpus=[row.hardware.gpu] if row.hardware.gpu else [],
            cpu=row.hardware.cpu,
            ram_gib=row.hardware.ram_gb,
        )
        request = EstimateRequest(
            model=row.model,
            quant=row.quant,
            backend=row.backend,
            depth=row.depth,
            threads=row.flags.threads,
            ctx=max(4096, row.depth + row.n_prompt + row.n_gen + 1),
        )
        speed = estimate(request, hw).speed
    except (StackctlError, ValueError):
        return None
    return (speed.tg_tps if row.test == "tg" else speed.pp_tps) or None


def run(args: argparse.Namespace) -> int:
    with open_store() as conn:
        results = all_results(conn)
    calibration = fit(results, predict_imported)
    path = write_calibration(calibration)
    if args.json:
        print_json({"calibration": str(path), **calibration.model_dump(mode="json")})
        return 0
    for f in calibration.factors:
        host = f", at a {f.host_gbps:g} GB/s host figure" if f.host_gbps else ""
        print(
            f"{f.hardware} {f.backend} {f.engine} {f.test}: x{f.factor:.3f} "
            f"(ratios {f.spread[0]:.2f}-{f.spread[1]:.2f}, {f.n} measurement(s), {f.origin}"
            f"{host})"
        )
    print(
        f"wrote {path} ({len(calibration.factors)} factor(s); "
        f"{len(calibration.skipped)} row(s) without a usable prediction left out)"
    )
    return 0
