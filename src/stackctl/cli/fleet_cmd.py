"""`stackctl fleet detect|plan|lock|status -i INVENTORY`, and `apply -i` (dispatched here)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stackctl.cli.output import info, print_json
from stackctl.cli.pipeline import mirror_dir
from stackctl.cli.plan_cmd import chosen_summary
from stackctl.cli.progress import PlaybookProgress
from stackctl.errors import EXIT_FAILED, EXIT_OK
from stackctl.fleet.plan import PlannedHost


def add_inventory_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-i", "--inventory", metavar="INVENTORY", type=Path, required=required,
        help="an Ansible inventory (YAML or INI) with stackctl_stack per host or group",
    )  # fmt: skip


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The fleet options of `apply` (used with -i)."""
    parser.add_argument("--limit", metavar="HOSTS", action="append", help="only these hosts (a,b)")
    parser.add_argument("--forks", metavar="N", type=int, help="hosts in parallel (Ansible forks)")
    parser.add_argument(
        "--serial", metavar="N", type=int, help="rolling: N hosts per batch, health gate per batch"
    )


def register(sub: Any) -> None:
    parser = sub.add_parser("fleet", help="plan, lock, detect and check a fleet from an inventory")
    fleet = parser.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    for name, help_, handler in (
        ("plan", "resolve every host: model, quant, backend, predicted tok/s", run_plan),
        ("lock", "write lockfiles/<stack>.<host>.lock.yaml for every host", run_lock),
        ("status", "per host: server up, endpoint, measured vs predicted", run_status),
        ("detect", "probe every host over SSH and save its profile", run_detect),
    ):
        action = fleet.add_parser(name, help=help_)
        add_inventory_option(action, required=True)
        action.add_argument("--json", action="store_true", help="machine-readable output")
        action.set_defaults(handler=handler)


def _plan(args: argparse.Namespace) -> list[PlannedHost]:
    from stackctl.fleet.inventory import read_inventory
    from stackctl.fleet.plan import plan_fleet

    return plan_fleet(read_inventory(args.inventory))


def _row(p: PlannedHost) -> str:
    if p.lock is None:
        return f"{p.host.name:<14} {p.host.stack or '-':<12} error: {p.error}"
    r = p.lock.resolved
    return (
        f"{p.host.name:<14} {r.stack:<12} {r.hardware:<24} {r.model.id} {r.model.quant:<8} "
        f"{r.engine.backend:<7} {r.predicted.tg_tps:7.1f} tok/s  ok"
    )


def _exit(planned: list[PlannedHost]) -> int:
    return EXIT_FAILED if any(p.error for p in planned) else EXIT_OK


def run_plan(args: argparse.Namespace) -> int:
    planned = _plan(args)
    if args.json:
        print_json(
            {
                "hosts": [
                    {
                        "host": p.host.name,
                        "stack": p.lock.resolved.stack if p.lock else p.host.stack,
                        "hardware": p.lock.resolved.hardware if p.lock else None,
                        "content_hash": p.lock.content_hash if p.lock else None,
                        "chosen": chosen_summary(p.lock.resolved) if p.lock else None,
                        "error": p.error,
                    }
                    for p in planned
                ]
            }
        )
    else:
        print(f"{'host':<14} {'stack':<12} {'hardware':<24} model quant backend  predicted  status")
        print("\n".join(_row(p) for p in planned))
    return _exit(planned)


def run_lock(args: argparse.Namespace) -> int:
    from stackctl.lock import write_lockfile

    planned = _plan(args)
    for p in planned:
        if p.lock is not None:
            write_lockfile(p.lock, p.lock_path)
            info(f"wrote {p.lock_path}")
        else:
            info(f"{p.host.name}: not locked: {p.error}")
    if args.json:
        print_json({"hosts": [p.summary().model_dump(mode="json") for p in planned]})
    return _exit(planned)


def run_status(args: argparse.Namespace) -> int:
    from stackctl.fleet.status import fleet_status

    rows = fleet_status(args.inventory)
    if args.json:
        print_json({"hosts": [r.model_dump(mode="json") for r in rows]})
        return EXIT_OK
    for r in rows:
        up = {True: "up", False: "DOWN", None: "?"}[r.up]
        measured = f"{r.measured_tg_tps:.1f}" if r.measured_tg_tps is not None else "-"
        predicted = f"{r.predicted_tg_tps:.1f}" if r.predicted_tg_tps is not None else "-"
        print(
            f"{r.host:<14} {up:<5} {r.endpoint or '-':<32} measured {measured} / predicted "
            f"{predicted} tok/s {r.note}".rstrip()
        )
    return EXIT_OK


def run_detect(args: argparse.Namespace) -> int:
    from stackctl.fleet.detect import detect_fleet

    results = detect_fleet(args.inventory)
    if args.json:
        print_json({"hosts": [r.model_dump(mode="json") for r in results]})
    else:
        for r in results:
            print(f"{r.host:<14} {r.profile or '-':<40} {r.error or 'ok'}")
    return EXIT_FAILED if any(r.error for r in results) else EXIT_OK


def apply_fleet(args: argparse.Namespace) -> int:
    """`apply -i INVENTORY`: every host from its own lock in one ansible-playbook run."""
    from stackctl.fleet.deploy import FleetOptions, deploy_fleet, rerun_command

    options = FleetOptions(
        inventory=args.inventory,
        limit=args.limit,
        forks=args.forks,
        serial=args.serial,
        check=args.check,
        relock=args.relock,
        mirror=mirror_dir(args),
    )
    progress = PlaybookProgress(build_log=None, verbose=args.verbose)
    info(
        f"running ansible-playbook over {args.inventory}" + (" (check mode)" if args.check else "")
    )
    run = deploy_fleet(options, on_event=progress.on_event)
    for path in run.written:
        info(f"wrote {path}")
    rerun = rerun_command(options, run.failed) if run.failed else None
    if args.json:
        print_json(
            {
                "inventory": str(args.inventory),
                "rendered": str(run.run_dir),
                "check": args.check,
                "hosts": [
                    {
                        **o.model_dump(mode="json"),
                        "first_event": run.events.first.get(o.host),
                        "gate_passed": run.events.gate.get(o.host),
                    }
                    for o in run.outcomes
                ],
                "rerun": rerun,
            }
        )
    else:
        for o in run.outcomes:
            print(f"{o.host:<14} {o.status:<12} {o.message}".rstrip())
        if rerun:
            print(f"rerun the failed hosts: {rerun}")
    return EXIT_FAILED if run.failed else EXIT_OK
