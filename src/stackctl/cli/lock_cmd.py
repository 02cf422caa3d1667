"""`stackctl lock`: resolve and write the lockfile; `--check` says whether it is stale."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stackctl.cli.output import info, print_json
from stackctl.cli.pipeline import add_stack_options, inputs_for_lock, load_inputs
from stackctl.errors import EXIT_STALE_LOCK
from stackctl.lock import check_lockfile, lockfile_text, write_lockfile
from stackctl.pipeline import default_lock_path, lock_inputs, make_lock, read_lock


def register(sub: Any) -> None:
    parser = sub.add_parser("lock", help="resolve and write lockfiles/<stack>.<profile>.lock.yaml")
    add_stack_options(parser)
    parser.add_argument("-o", "--output", help="write the lock here instead")
    parser.add_argument(
        "--check",
        nargs="?",
        const="",
        metavar="LOCK",
        help="exit 3 and say why when the lock is stale",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> int:
    if args.check or args.output:
        path = Path(args.check or args.output)
    else:
        guess = load_inputs(args)
        path = default_lock_path(guess.spec.name, guess.hardware.name)
    lock = read_lock(path)
    inputs = inputs_for_lock(args, lock)
    status = check_lockfile(lock, lock_inputs(inputs))
    if args.json:
        print_json({"lock": str(path), **status.model_dump(mode="json")})
    elif status.fresh:
        print(f"{path} is up to date")
    else:
        print(f"{path} is stale:")
        for reason in status.reasons:
            print(f"  - {reason}")
        print("  re-lock with `stackctl lock`")
    return 0 if status.fresh else EXIT_STALE_LOCK


def run(args: argparse.Namespace) -> int:
    if args.check is not None:
        return _check(args)
    inputs = load_inputs(args)
    lock = make_lock(inputs)
    path = (
        Path(args.output)
        if args.output
        else default_lock_path(lock.resolved.stack, lock.resolved.hardware)
    )
    unchanged = path.is_file() and path.read_text(encoding="utf-8") == lockfile_text(lock)
    if not unchanged:
        write_lockfile(lock, path)
    if args.json:
        print_json({"lock": str(path), "changed": not unchanged, "content_hash": lock.content_hash})
    else:
        info(f"{'unchanged' if unchanged else 'wrote'} {path}")
    return 0
