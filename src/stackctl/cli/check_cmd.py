"""`stackctl check-output`: is the deployed model's output right? Exit 1 when it is not."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.bench.check_output import check_deployed
from stackctl.bench.models import CheckReport
from stackctl.bench.rows import now_utc
from stackctl.bench.store import add_check, open_store
from stackctl.cli.bench_args import lock_from
from stackctl.cli.output import info, print_json
from stackctl.errors import EXIT_FAILED
from stackctl.models.lock import Lockfile
from stackctl.service import base_url, local_api_key


def register(sub: Any) -> None:
    parser = sub.add_parser("check-output", help="fixed greedy prompts: fail on wrong output")
    parser.add_argument("lock", nargs="?", metavar="LOCK", help="a lockfile (default: this box's)")
    parser.add_argument("--url", help="the endpoint (default: the lock's host and port)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def check_lock(lock: Lockfile, url: str | None = None) -> CheckReport:
    """Run the checks that fit the lock's model, store the outcome, return it."""
    return store_check(check_deployed(lock, url or base_url(lock), local_api_key(lock)))


def store_check(report: CheckReport) -> CheckReport:
    with open_store() as conn:
        add_check(conn, report, now_utc())
    return report


def print_check(report: CheckReport) -> None:
    for c in report.cases:
        mark = "ok  " if c.passed else "FAIL"
        detail = "" if c.passed else f": {c.reason}; got {c.got!r}"
        print(f"  {mark} {c.name}{detail}")
    verdict = "passed" if report.passed else "FAILED: the deployment answers wrongly"
    print(f"check-output {verdict} ({report.model}, {report.kind}, {report.endpoint})")


def run(args: argparse.Namespace) -> int:
    lock, path = lock_from(args.lock)
    info(f"check-output for {path}")
    report = check_lock(lock, args.url)
    if args.json:
        print_json(report)
    else:
        print_check(report)
    return 0 if report.passed else EXIT_FAILED
