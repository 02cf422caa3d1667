"""Day-two commands: `status`, `stop`, `logs`, `destroy` for a deployed stack."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stackctl.applylog import tail
from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.cli.output import info, print_json
from stackctl.errors import ApplyError, NotDeployedError
from stackctl.layout import host_layout
from stackctl.models.lock import Lockfile
from stackctl.pipeline import default_lock_path, default_render_dir, read_lock, render_lock
from stackctl.service import has_systemd, service_status
from stackctl.spec import load_stack, stack_path
from stackctl.state import (
    CURRENT,
    applied_dir,
    applied_lock,
    apply_log_path,
    forget_applied,
    rendered_dir,
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", nargs="?", help="stack file or name (default: default)")
    parser.add_argument("--lock", help="lockfile of the deployment (default: the stack's)")
    add_hardware_options(parser)


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="is the deployed stack running and healthy")
    _common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)
    stop = sub.add_parser("stop", help="stop the deployed stack's server")
    _common(stop)
    stop.set_defaults(handler=run_stop)
    logs = sub.add_parser("logs", help="show the server's log")
    _common(logs)
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines to show")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--apply", action="store_true", help="show the last apply's log")
    logs.set_defaults(handler=run_logs)
    destroy = sub.add_parser("destroy", help="stop the stack and remove what apply installed")
    _common(destroy)
    destroy.add_argument("--purge-models", action="store_true", help="also delete model files")
    destroy.set_defaults(handler=run_destroy)


def _lock(args: argparse.Namespace) -> tuple[Lockfile, Path]:
    """--lock, else the stack's lockfile in this folder, else the lock this box last applied
    (recorded under its state dir), so day-two commands work from any folder."""
    if args.lock:
        path = Path(args.lock)
        return read_lock(path), path
    recorded = applied_lock()
    if args.stack is None and recorded is not None:
        return recorded, applied_dir() / CURRENT
    spec = load_stack(stack_path(args.stack))
    path = default_lock_path(spec.name, hardware_from_args(args).name)
    if not path.is_file() and recorded is not None and recorded.resolved.stack == spec.name:
        return recorded, applied_dir() / CURRENT
    return read_lock(path), path


def _tree(lock: Lockfile, path: Path) -> Path:
    """Render beside the lockfile's project, or inside the state dir for a recorded lock."""
    out = rendered_dir(lock) if path.is_relative_to(applied_dir()) else default_render_dir(lock)
    return render_lock(lock, path, out, host_layout())


def run_status(args: argparse.Namespace) -> int:
    lock, _ = _lock(args)
    status = service_status(lock)
    if args.json:
        print_json(status)
    else:
        state = "running" if status.running else "stopped"
        health = "healthy" if status.healthy else "not answering"
        print(
            f"{status.service}: {state} ({status.manager}, pid {status.pid or '-'}, "
            f"uid {'-' if status.uid is None else status.uid}), {status.url} {health}"
        )
        if status.crash_loop:
            print(f"  CRASH LOOP: {status.restarts} restarts, last exit code {status.last_exit}")
        elif status.restarts:
            print(f"  restarted {status.restarts} time(s), last exit code {status.last_exit}")
    return 0 if status.running and status.healthy else 1


def _playbook(args: argparse.Namespace, playbook: str, extra: dict[str, Any]) -> int:
    from stackctl.apply import run_playbook

    lock, path = _lock(args)
    tree = _tree(lock, path)
    result = run_playbook(
        tree, playbook, extra_vars={"ansible_python_interpreter": sys.executable, **extra}
    )
    if result.failed:
        raise ApplyError(
            f"{playbook} failed",
            details=result.failure_details(),
        )
    info(
        f"{lock.resolved.service}: {playbook.removesuffix('.yml')} done (changed={result.changed})"
    )
    return 0


def run_stop(args: argparse.Namespace) -> int:
    return _playbook(args, "stop.yml", {})


def run_destroy(args: argparse.Namespace) -> int:
    code = _playbook(args, "destroy.yml", {"stackctl_destroy_models": bool(args.purge_models)})
    forget_applied(_lock(args)[0])
    return code


def _follow(log: Path, lines: int) -> None:
    with log.open("rb") as handle:
        tail = handle.read().decode(errors="replace").splitlines()[-lines:]
        print("\n".join(tail), flush=True)
        while True:
            chunk = handle.read()
            if chunk:
                print(chunk.decode(errors="replace"), end="", flush=True)
            else:
                time.sleep(0.5)


def _print_tail(log: Path, lines: int, follow: bool) -> int:
    if follow:
        _follow(log, lines)
        return 0
    print("\n".join(tail(log, lines)))
    return 0


def run_logs(args: argparse.Namespace) -> int:
    apply_log = apply_log_path()
    if args.apply:
        if not apply_log.is_file():
            raise NotDeployedError(f"{apply_log}: stackctl apply has not run on this box")
        return _print_tail(apply_log, args.lines, args.follow)
    lock, _ = _lock(args)
    if has_systemd():
        argv = ["journalctl", "-u", lock.resolved.service, "-n", str(args.lines)]
        return subprocess.call([*argv, "-f"] if args.follow else argv)
    log = Path(service_status(lock).log)
    if log.is_file():
        return _print_tail(log, args.lines, args.follow)
    if apply_log.is_file():  # the server never started: why is in the apply log
        info(f"{log}: no server log yet; the last apply's log ({apply_log}):")
        return _print_tail(apply_log, args.lines, follow=False)
    raise NotDeployedError(f"{log}: no server log and no apply log on this box")
