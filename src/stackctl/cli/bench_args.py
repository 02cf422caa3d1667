"""What the bench-family commands share: which lock, its box, and a progress line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackctl.cli.output import info
from stackctl.cli.pipeline import inputs_for_lock, load_inputs
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.pipeline import default_lock_path, read_lock


def add_lock_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the endpoint (default: the lock's host and port)")


def lock_from(path: str | None) -> tuple[Lockfile, Path]:
    """The given lock, else the default stack's lock for this box."""
    if path:
        return read_lock(Path(path)), Path(path)
    args = argparse.Namespace(
        stack=None, hardware=None, gpu=[], gpu_count=None, cpu=None, ram=None, system=None
    )
    inputs = load_inputs(args)
    lock_path = default_lock_path(inputs.spec.name, inputs.hardware.name)
    return read_lock(lock_path), lock_path


def lock_hardware(lock: Lockfile) -> HardwareProfile:
    """The profile the lock was made for (its file, or this box detected again)."""
    args = argparse.Namespace(
        stack=None, hardware=None, gpu=[], gpu_count=None, cpu=None, ram=None, system=None
    )
    return inputs_for_lock(args, lock).hardware


def progress(step: int, total: int, label: str) -> None:
    """A one-line bar on a terminal, one line per step otherwise."""
    width = 24
    done = int(width * step / max(total, 1))
    bar = f"[{'#' * done}{'.' * (width - done)}] {step}/{total} {label}"
    if sys.stderr.isatty():
        print(f"\r\033[K{bar}", end="" if step < total else "\n", file=sys.stderr, flush=True)
    else:
        info(bar)
