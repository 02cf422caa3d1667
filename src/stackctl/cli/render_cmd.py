"""`stackctl render [LOCK]`: write build/<stack>.<profile>/ from a lock (never a live resolve)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.cli.output import info, print_json
from stackctl.pipeline import default_lock_path, default_render_dir, read_lock, render_lock
from stackctl.spec import load_stack, stack_path


def register(sub: Any) -> None:
    parser = sub.add_parser("render", help="render playbook, vars, unit and Containerfile")
    parser.add_argument(
        "lock", nargs="?", help="lockfile (default: the default stack's lock for this box)"
    )
    add_hardware_options(parser)
    parser.add_argument("-o", "--output", help="folder to render into")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lock:
        lock_path = Path(args.lock)
    else:
        spec = load_stack(stack_path(None))
        lock_path = default_lock_path(spec.name, hardware_from_args(args).name)
    lock = read_lock(lock_path)
    out = Path(args.output) if args.output else default_render_dir(lock)
    render_lock(lock, lock_path, out)
    if args.json:
        print_json({"lock": str(lock_path), "output": str(out)})
    else:
        info(f"rendered {lock_path} into {out}/")
    return 0
