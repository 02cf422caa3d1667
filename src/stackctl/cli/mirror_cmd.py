"""`stackctl mirror fill DIR [LOCK ...]`: pinned artefacts into a folder, for offline boxes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stackctl import mirror_fill
from stackctl.catalog import load_catalog
from stackctl.cli.output import info, print_json
from stackctl.models.resolved import ArtefactPin
from stackctl.pipeline import read_lock
from stackctl.resources import catalog_dir, stacks_dir
from stackctl.spec import load_stack


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "mirror", help="fill a local artefact mirror for boxes without internet"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    fill = verbs.add_parser(
        "fill",
        help="fetch every pinned artefact of the locks (default: the engine sources and the "
        "files the shipped stacks pin) into DIR, verified by sha256",
    )
    fill.add_argument("dir", help="mirror folder (created if missing)")
    fill.add_argument("locks", nargs="*", metavar="LOCK", help="lockfiles whose artefacts to fetch")
    fill.add_argument("--json", action="store_true", help="machine-readable output")
    fill.set_defaults(handler=run_fill)


def _pins(locks: list[str]) -> list[ArtefactPin]:
    if locks:
        return [pin for path in locks for pin in mirror_fill.lock_pins(read_lock(Path(path)))]
    specs = [load_stack(path) for path in sorted(stacks_dir().glob("*.yaml"))]
    pinned = [(s.pin.model, s.pin.quant) for s in specs if s.pin is not None and s.pin.quant]
    return mirror_fill.shipped_pins(load_catalog(catalog_dir()), pinned)


def _announce(index: int, total: int, pin: ArtefactPin) -> None:
    size = f", {pin.size / 2**20:.0f} MiB" if pin.size else ""
    info(f"[{index}/{total}] fetching {pin.file}{size}")


def run_fill(args: argparse.Namespace) -> int:
    mirror = Path(args.dir)
    results = mirror_fill.fill(mirror, _pins(args.locks), on_start=_announce)
    if args.json:
        print_json(
            {
                "mirror": str(mirror),
                "artefacts": [
                    {"file": r.file, "status": r.status, "sha256": r.sha256, "size": r.size}
                    for r in results
                ],
            }
        )
    else:
        for r in results:
            info(f"{r.status:8} {r.file} ({r.size / 2**20:.0f} MiB, sha256 {r.sha256[:12]}...)")
        info(f"mirror {mirror} holds {len(results)} pinned artefact(s)")
    return 0
