"""`stackctl report`: predicted vs measured per host, as one HTML file and a terminal table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stackctl.bench.models import BenchPoint
from stackctl.bench.report import SUMMARY_HEAD, report_html, summary_rows, terminal_table
from stackctl.bench.store import all_checks, all_results, all_sweeps, open_store
from stackctl.cli.output import info, print_json
from stackctl.fsio import write_text_atomic


def register(sub: Any) -> None:
    parser = sub.add_parser("report", help="predicted vs measured, per host (HTML + table)")
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def print_points(points: list[BenchPoint]) -> None:
    head = [
        "depth",
        "clients",
        "pp tok/s",
        "tg tok/s",
        "ttft s",
        "tg spread",
        "predicted tg",
        "error",
        "",
    ]
    rows = []
    for p in points:
        pred = p.predicted.tg_tps
        err = f"{(pred - p.tg_tps) / p.tg_tps:+.0%}" if pred and p.tg_tps else "n/a"
        rows.append(
            [
                str(p.depth),
                str(p.clients),
                _f(p.pp_tps),
                _f(p.tg_tps),
                _f(p.ttft_s, 3),
                _f(p.spread.tg, 3),
                _f(pred),
                err,
                "partial" if p.partial else "",
            ]
        )
    print(terminal_table(head, rows))


def _f(value: float | None, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if value is not None else "n/a"


def run(args: argparse.Namespace) -> int:
    with open_store() as conn:
        results, sweeps, checks = all_results(conn), all_sweeps(conn), all_checks(conn)
    out = Path(args.output)
    write_text_atomic(out, report_html(results, sweeps, checks))
    rows = summary_rows(results)
    if args.json:
        print_json(
            {
                "report": str(out),
                "rows": [dict(zip(SUMMARY_HEAD[:-1], r, strict=False)) for r in rows],
            }
        )
    else:
        print(terminal_table(SUMMARY_HEAD, rows))
        info(f"wrote {out}")
    return 0
