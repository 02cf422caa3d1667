"""`stackctl bench`: measure the running endpoint; `--sweep`, `import` and `export` too."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stackctl import __version__, layout
from stackctl.bench.llamabench import parse_text
from stackctl.bench.measure import BenchPlan, run_bench
from stackctl.bench.models import BenchReport, StoredResult
from stackctl.bench.predict import predict_point
from stackctl.bench.rows import now_utc, row_hardware, stored_from_points
from stackctl.bench.store import add_results, all_results, open_store
from stackctl.cli.bench_args import lock_from, lock_hardware, progress
from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.cli.output import info, print_json
from stackctl.errors import EXIT_FAILED, InputError
from stackctl.fsio import write_text_atomic
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.service import base_url


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more non-negative integers")
    return values


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="measure the deployed stack (also: bench --sweep, bench import FILE, bench export)",
    )
    parser.add_argument(
        "target",
        nargs="*",
        metavar="LOCK | import FILE | export",
        help="a lockfile (default: this box's default stack)",
    )
    parser.add_argument("--url", help="the endpoint (default: the lock's host and port)")
    parser.add_argument("--depths", type=_ints, default=[0, 4096], help="context depths")
    parser.add_argument("--clients", type=_ints, default=[1, 4], help="concurrent clients")
    parser.add_argument("--runs", type=int, default=3, help="runs per point after the warm-up")
    parser.add_argument("--n-gen", type=int, default=64, help="tokens generated per request")
    parser.add_argument("--sweep", action="store_true", help="search flags; write the tuning file")
    parser.add_argument(
        "--llama-bench", action="store_true", help="also run the engine's llama-bench at each depth"
    )
    from stackctl.cli.sweep_args import add_sweep_options

    add_sweep_options(parser)
    parser.add_argument("-o", "--output", help="export: write here instead of stdout")
    parser.add_argument("--source", help="import: who measured (default: the file name)")
    add_hardware_options(parser)
    from stackctl.cli.fleet_cmd import add_inventory_option

    add_inventory_option(parser, required=False)
    parser.add_argument("--limit", metavar="HOSTS", help="with -i: only these hosts (a,b)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    words = list(args.target)
    if words and words[0] == "import":
        if len(words) != 2:
            raise InputError("usage: stackctl bench import FILE")
        return _import(args, Path(words[1]))
    if words and words[0] == "export":
        return _export(args)
    if len(words) > 1:
        raise InputError(f"one lockfile at most, not {len(words)}")
    if args.inventory is not None:
        if words or args.sweep or args.llama_bench or args.url:
            raise InputError(
                "bench -i measures each host's server from here: "
                "no LOCK, --url, --sweep or --llama-bench with it"
            )
        return _bench_fleet(args)
    lock_path = words[0] if words else None
    if args.sweep:
        from stackctl.cli.sweep_args import run_sweep

        return run_sweep(args, lock_path)
    return _bench(args, lock_path)


def _fitting_depths(args: argparse.Namespace, lock: Lockfile) -> list[int]:
    rt = lock.resolved.runtime
    slot = rt.context // max(rt.parallel, 1)
    depths = [d for d in args.depths if d + args.n_gen < slot]
    if depths != list(args.depths):
        info(
            f"depths that leave no room for {args.n_gen} tokens in a {slot}-token slot are left out"
        )
    return depths


def _measure(
    args: argparse.Namespace,
    lock: Lockfile,
    hardware: HardwareProfile,
    url: str,
    api_key: str | None,
) -> BenchReport:
    """Bench one endpoint, store what it measured, and say where it stopped if it did."""
    depths = _fitting_depths(args, lock)
    plan = BenchPlan(
        base_url=url,
        model=lock.resolved.model.id,
        depths=depths,
        clients=args.clients,
        runs=args.runs,
        n_gen=args.n_gen,
        api_key=api_key,
    )
    info(
        f"bench {url}: depths {depths} x clients {list(args.clients)}, {args.runs} run(s) "
        "each after one warm-up"
    )
    points = run_bench(plan, lambda d: predict_point(lock, hardware, d), progress)
    stored = stored_from_points(lock, hardware, points, args.n_gen)
    engine_rows = _llama_bench(args, lock, hardware, depths) if args.llama_bench else []
    with open_store() as conn:
        add_results(conn, [*stored, *engine_rows])
    for p in points:
        if p.error:
            info(f"error: {p.error}; the points measured before it are kept (marked partial)")
    return BenchReport(
        lock_hash=lock.content_hash,
        hardware=hardware.name,
        endpoint=url,
        partial=any(p.partial for p in points),
        results=points,
        llama_bench=engine_rows,
    )


def _bench(args: argparse.Namespace, lock_path: str | None) -> int:
    from stackctl.service import local_api_key

    lock, _path = lock_from(lock_path)
    hardware = lock_hardware(lock)
    report = _measure(args, lock, hardware, args.url or base_url(lock), local_api_key(lock))
    if args.json:
        print_json(report)
    else:
        from stackctl.cli.report_cmd import print_points

        print_points(report.results)
    return EXIT_FAILED if report.partial or not report.results else 0


def _bench_fleet(args: argparse.Namespace) -> int:
    """Every host of the inventory, one after another, from the controller."""
    from stackctl.fleet.bench import bench_targets

    targets, skipped = bench_targets(args.inventory, args.limit)
    reports: dict[str, BenchReport] = {}
    for target in targets:
        info(f"{target.host}:")
        reports[target.host] = _measure(args, target.lock, target.hardware, target.url,
                                        target.api_key)  # fmt: skip
    failed = set(skipped) | {h for h, r in reports.items() if r.partial or not r.results}
    if args.json:
        hosts = [
            {"host": h, "report": reports[h].model_dump(mode="json") if h in reports else None,
             "error": skipped.get(h)}
            for h in [*reports, *skipped]
        ]  # fmt: skip
        print_json({"hosts": hosts})
    else:
        from stackctl.cli.report_cmd import print_points

        for host, report in reports.items():
            info(f"{host} ({report.endpoint}):")
            print_points(report.results)
        for host, why in skipped.items():
            info(f"{host}: not measured: {why}")
    return EXIT_FAILED if failed else 0


def _llama_bench(
    args: argparse.Namespace, lock: Lockfile, hardware: HardwareProfile, depths: list[int]
) -> list[StoredResult]:
    from stackctl.bench.engine_bench import llama_bench_argv, llama_bench_results
    from stackctl.cli.sweep_args import fixed_bench_args

    host = layout.host_layout()
    binary = f"{layout.engine_dir(lock, host)}/bin/llama-bench"
    argv = llama_bench_argv(
        binary, layout.model_path(lock, host), lock, depths, args.n_gen, args.reps
    )
    info(f"llama-bench at depths {depths} ({args.reps} repetitions)")
    return llama_bench_results([*argv, *fixed_bench_args(lock, args.bench_args)], lock, hardware)


def _import_hardware(args: argparse.Namespace) -> Any:
    declared = args.hardware or args.gpu or args.cpu or args.system
    return row_hardware(hardware_from_args(args)) if declared else None


def _import(args: argparse.Namespace, path: Path) -> int:
    from stackctl.catalog import load_catalog
    from stackctl.resources import catalog_dir

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    models = {a.file: a.model for a in load_catalog(catalog_dir()).artefacts}
    parsed = parse_text(
        text, source=args.source or path.name, hardware=_import_hardware(args), models=models
    )
    date = now_utc()
    stored = [
        StoredResult(
            kind="imported",
            date=date,
            stackctl_version=__version__,
            row=row.model_copy(update={"ref": row.ref or f"{path.name}:{line}"}),
        )
        for line, row in parsed.rows
    ]
    with open_store() as conn:
        add_results(conn, stored)
    bad = [{"line": line, "reason": why} for line, why in parsed.bad]
    if args.json:
        print_json({"file": str(path), "imported": len(stored), "rejected": bad})
    else:
        print(f"{path}: imported {len(stored)} row(s), rejected {len(bad)}")
        for b in bad:
            print(f"  {path}:{b['line']}: {b['reason']}")
    return EXIT_FAILED if bad else 0


def _export(args: argparse.Namespace) -> int:
    with open_store() as conn:
        results = all_results(conn)
    rows = [r.row.model_dump(mode="json") for r in results if r.kind == "measured"]
    payload = {
        "schema_version": 1,
        "exported": now_utc(),
        "generator": f"stackctl {__version__}",
        "rows": rows,
    }
    text = json.dumps(payload, indent=2) + "\n"
    if args.output:
        write_text_atomic(Path(args.output), text)
        info(f"wrote {len(rows)} row(s) to {args.output}")
    else:
        print(text, end="")
    return 0
