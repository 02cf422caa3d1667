"""Day-two commands: `status`, `stop`, `logs`, `destroy` for a deployed stack."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.cli.output import info, print_json
from stackctl.errors import ApplyError
from stackctl.models.lock import Lockfile
from stackctl.pipeline import default_lock_path, default_render_dir, read_lock, render_lock
from stackctl.service import has_systemd, service_status
from stackctl.spec import load_stack, stack_path


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
    logs.set_defaults(handler=run_logs)
    destroy = sub.add_parser("destroy", help="stop the stack and remove what apply installed")
    _common(destroy)
    destroy.add_argument("--purge-models", action="store_true", help="also delete model files")
    destroy.set_defaults(handler=run_destroy)


def _lock(args: argparse.Namespace) -> tuple[Lockfile, Path]:
    if args.lock:
        path = Path(args.lock)
    else:
        spec = load_stack(stack_path(args.stack))
        path = default_lock_path(spec.name, hardware_from_args(args).name)
    return read_lock(path), path


def run_status(args: argparse.Namespace) -> int:
    lock, _ = _lock(args)
    status = service_status(lock)
    if args.json:
        print_json(status)
    else:
        state = "running" if status.running else "stopped"
        health = "healthy" if status.healthy else "not answering"
        print(
            f"{status.service}: {state} ({status.manager}, pid {status.pid or '-'}), "
            f"{status.url} {health}"
        )
    return 0 if status.running and status.healthy else 1


def _playbook(args: argparse.Namespace, playbook: str, extra: dict[str, Any]) -> int:
    from stackctl.apply import run_playbook

    lock, path = _lock(args)
    tree = render_lock(lock, path, default_render_dir(lock))
    result = run_playbook(
        tree, playbook, extra_vars={"ansible_python_interpreter": sys.executable, **extra}
    )
    if result.failed:
        raise ApplyError(
            f"{playbook} failed",
            details=[f"{t.host}: {t.task}: {t.message}" for t in result.failed_tasks],
        )
    info(
        f"{lock.resolved.service}: {playbook.removesuffix('.yml')} done (changed={result.changed})"
    )
    return 0


def run_stop(args: argparse.Namespace) -> int:
    return _playbook(args, "stop.yml", {})


def run_destroy(args: argparse.Namespace) -> int:
    return _playbook(args, "destroy.yml", {"stackctl_destroy_models": bool(args.purge_models)})


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


def run_logs(args: argparse.Namespace) -> int:
    lock, _ = _lock(args)
    if has_systemd():
        argv = ["journalctl", "-u", lock.resolved.service, "-n", str(args.lines)]
        return subprocess.call([*argv, "-f"] if args.follow else argv)
    log = Path(service_status(lock).log)
    if not log.is_file():
        raise ApplyError(f"{log}: no log yet", hint="has the stack been applied on this box?")
    if args.follow:
        _follow(log, args.lines)
        return 0
    tail = log.read_bytes().decode(errors="replace").splitlines()[-args.lines :]
    print("\n".join(tail))
    return 0
