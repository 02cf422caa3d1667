"""`stackctl apply`: resolve (or reuse the lock), render, run ansible-playbook, check the server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from stackctl import layout
from stackctl.applylog import ApplyLog
from stackctl.cli import fleet_cmd
from stackctl.cli.apply_state import (
    apply_session,
    both,
    check_box,
    previous_serving,
    roll_back_if_down,
    verify_or_roll_back,
)
from stackctl.cli.check_cmd import print_check, store_check
from stackctl.cli.output import info, print_json
from stackctl.cli.pipeline import add_stack_options, load_inputs, mirror_dir
from stackctl.cli.progress import PlaybookProgress
from stackctl.errors import ApplyError, InputError
from stackctl.lock import fill_fetched_pins, write_lockfile
from stackctl.mirror import find_in_mirror
from stackctl.mirror_fill import require_verified
from stackctl.models.apply import PlaybookResult, SmokeResult
from stackctl.models.lock import Lockfile
from stackctl.pipeline import (
    Inputs,
    default_lock_path,
    default_render_dir,
    make_lock,
    read_lock,
    render_lock,
    require_fresh,
)
from stackctl.service import base_url
from stackctl.state import record_applied


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "apply", help="deploy the stack on this box (resolve, lock, render, run)"
    )
    add_stack_options(parser)
    parser.add_argument(
        "--mirror", metavar="DIR", help="local artefact mirror (also $STACKCTL_MIRROR)"
    )
    parser.add_argument("--relock", action="store_true", help="re-resolve a stale lock")
    parser.add_argument(
        "--require-verified",
        action="store_true",
        help="refuse artefacts whose sha256 is not yet known (no first-fetch recording)",
    )
    parser.add_argument(
        "--check", action="store_true", help="run Ansible in check mode: show what would change"
    )
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every task")
    parser.add_argument("--no-check-output", action="store_true",
                        help="skip the output check that follows a deploy")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable summary")
    fleet_cmd.add_inventory_option(parser, required=False)
    fleet_cmd.add_run_options(parser)
    parser.set_defaults(handler=run)


def _lock(inputs: Inputs, relock: bool) -> tuple[Lockfile, Path, bool]:
    """The lock to apply, its path, and whether it is new (not yet written)."""
    path = default_lock_path(inputs.spec.name, inputs.hardware.name)
    if path.is_file() and not relock:
        lock = read_lock(path)
        require_fresh(lock, path, inputs)
        info(f"using {path}")
        return lock, path, False
    return make_lock(inputs), path, True


HEALTH_TIMEOUT_ENV = "STACKCTL_HEALTH_TIMEOUT"


def health_timeout() -> int | None:
    """Seconds the service role waits for /health (its default: 300), from the environment:
    a model that loads in seconds need not make a failed upgrade wait five minutes."""
    text = os.environ.get(HEALTH_TIMEOUT_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(
            f"{HEALTH_TIMEOUT_ENV}={text!r} is not a number of seconds",
            hint="a whole number of seconds, e.g. 60; unset it for the default 300",
        )
    return int(text)


def _extra_vars(lock: Lockfile, mirror: Path | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"ansible_python_interpreter": sys.executable}
    timeout = health_timeout()
    if timeout is not None:
        extra["stackctl_health_timeout"] = timeout
    if mirror is not None:
        info(f"looking up pinned artefacts in {mirror}")
        extra["stackctl_engine_source_local"] = str(
            find_in_mirror(mirror, lock.resolved.engine.source)
        )
        extra["stackctl_model_local"] = str(find_in_mirror(mirror, lock.resolved.model.artefact))
        headers = lock.resolved.engine.vulkan_headers
        if headers is not None:
            extra["stackctl_engine_vulkan_headers_local"] = {
                deb.file: str(find_in_mirror(mirror, deb)) for deb in headers.debs
            }
    return extra


def _confirm(args: argparse.Namespace, lock: Lockfile) -> bool:
    if args.yes or args.check or not sys.stdin.isatty():
        return True
    r = lock.resolved
    answer = input(
        f"deploy {r.model.id} {r.model.quant} with llama.cpp {r.engine.version} "
        f"on localhost? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def _smoke(lock: Lockfile) -> SmokeResult:
    from stackctl.apply import smoke_test
    from stackctl.service import local_api_key

    return smoke_test(
        base_url(lock),
        model=lock.resolved.model.id,
        kind=lock.resolved.model.kind,
        api_key=local_api_key(lock),
    )


def _record_fetched(lock: Lockfile, path: Path, result: PlaybookResult) -> Lockfile:
    filled = fill_fetched_pins(lock, result.fetched, host="localhost")
    if filled != lock:
        write_lockfile(filled, path)
        info(f"recorded the sha256 of first-fetched artefacts in {path}")
    return filled


def _report(result: PlaybookResult, smoke: SmokeResult | None, lock: Lockfile) -> None:
    for name, stats in result.hosts.items():
        info(
            f"{name}: ok={stats.ok} changed={stats.changed} failed={stats.failures} "
            f"unreachable={stats.unreachable}"
        )
    if smoke is None:
        return
    predicted = lock.resolved.predicted
    measured = f"{smoke.tg_tps:.1f}" if smoke.tg_tps is not None else "n/a"
    model = lock.resolved.model.id
    print(f"{model} answered on {smoke.endpoint}: {smoke.prompt!r} -> {smoke.text!r}")
    low, high = predicted.tg_tps_range
    print(
        f"decode: measured {measured} tok/s, predicted {predicted.tg_tps:.1f} tok/s "
        f"(range {low:.1f}-{high:.1f})"
    )
    if smoke.tg_tps is not None and not low <= smoke.tg_tps <= high:
        info(
            "the measurement is outside the predicted range: `stackctl bench` then "
            "`stackctl calibrate` fit this box's own factor, which later plans use"
        )


def run(args: argparse.Namespace) -> int:
    if args.inventory is not None:
        return fleet_cmd.apply_fleet(args)
    inputs = load_inputs(args)
    lock, lock_path, new = _lock(inputs, args.relock)
    if args.require_verified:
        require_verified(lock)
    extra = _extra_vars(lock, mirror_dir(args))  # a missing artefact stops us before any write
    if not _confirm(args, lock):
        info("nothing applied")
        return 1
    with apply_session("apply") as log:
        return _apply(args, log, (lock, lock_path, new), extra)


def _apply(
    args: argparse.Namespace,
    log: ApplyLog,
    locked: tuple[Lockfile, Path, bool],
    extra: dict[str, Any],
) -> int:
    from stackctl.apply import run_playbook

    lock, lock_path, new = locked
    check_box(lock, log)  # before the first write
    if new and not args.check:
        write_lockfile(lock, lock_path)
        info(f"wrote {lock_path}")
    host = layout.host_layout()
    tree = render_lock(lock, lock_path, default_render_dir(lock), host)
    info(f"rendered {tree}/")
    info("running ansible-playbook (check mode)" if args.check else "running ansible-playbook")
    progress = PlaybookProgress(
        build_log=Path(layout.build_log(lock, host)), verbose=args.verbose or args.check
    )
    serving = None if args.check else previous_serving()  # to roll back to if the upgrade breaks it
    result = run_playbook(
        tree,
        "playbook.yml",
        extra_vars=extra,
        check=args.check,
        on_event=both(progress.on_event, log.on_event),
        on_tick=progress.on_tick,
    )
    if result.failed:
        failure = ApplyError(
            "the playbook failed",
            details=result.failure_details(),
        )
        if not args.check:
            roll_back_if_down(lock, serving, log, failure)
        raise failure
    checked = None
    if not args.check:
        lock = _record_fetched(lock, lock_path, result)
        # the upgrade gate's check-output report is the one apply keeps (issue 11's check after
        # every apply): the same prompts are not asked twice
        checked = verify_or_roll_back(lock, log, check=not args.no_check_output)
        record_applied(lock, lock_path=lock_path, tree=tree)
    smoke = None if args.check else _smoke(lock)
    if checked is not None:
        store_check(checked)
    if args.json:
        print_json(
            {
                "lock": str(lock_path),
                "rendered": str(tree),
                "check": args.check,
                "changed": result.changed,
                "result": result.model_dump(mode="json"),
                "smoke": smoke.model_dump(mode="json") if smoke else None,
                "predicted": lock.resolved.predicted.model_dump(mode="json"),
                "check_output": checked.model_dump(mode="json") if checked else None,
            }
        )
    else:
        _report(result, smoke, lock)
        if checked is not None:
            print_check(checked)
    return 0 if checked is None or checked.passed else 1
