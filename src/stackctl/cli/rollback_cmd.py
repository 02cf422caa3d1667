"""`stackctl rollback`: run the previous applied lock's service again."""

from __future__ import annotations

import argparse
from typing import Any

from stackctl.cli.apply_state import apply_session
from stackctl.cli.output import info, print_json
from stackctl.state import PREVIOUS, require_applied


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "rollback", help="go back to the lock this box ran before the last apply"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable summary")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stackctl.rollback import redeploy

    previous, path = require_applied(PREVIOUS)
    r = previous.resolved
    with apply_session("rollback") as log:
        info(f"rolling back to {r.model.id} {r.model.quant}, llama.cpp {r.engine.version}")
        redeploy(previous, log.on_event, {})
    if args.json:
        print_json({"rolled_back_to": str(path), "content_hash": previous.content_hash})
    else:
        info(f"{r.service}: running the previous lock again ({previous.content_hash})")
    return 0
