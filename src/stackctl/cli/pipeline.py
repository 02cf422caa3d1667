"""Argument glue over stackctl.pipeline: stack and hardware options into typed inputs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.models.lock import Lockfile
from stackctl.pipeline import Inputs, load_stack_inputs, recorded_path


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stack", nargs="?", help="stack file or shipped stack name (default: default)"
    )
    add_hardware_options(parser)


def load_inputs(args: argparse.Namespace) -> Inputs:
    hardware_path = Path(args.hardware) if getattr(args, "hardware", None) else None
    return load_stack_inputs(args.stack, hardware_from_args(args), hardware_path)


def mirror_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "mirror", None) or os.environ.get("STACKCTL_MIRROR")
    return Path(value) if value else None


def inputs_for_lock(args: argparse.Namespace, lock: Lockfile) -> Inputs:
    """Today's inputs for a lock: the stack and profile files it names, unless args say others."""
    if args.stack is None and lock.inputs.stack.path:
        args.stack = str(recorded_path(lock.inputs.stack.path))
    no_hardware_args = not any(
        getattr(args, name, None) for name in ("hardware", "gpu", "cpu", "ram", "system")
    )
    if no_hardware_args and lock.inputs.hardware.path:
        args.hardware = recorded_path(lock.inputs.hardware.path)
    return load_inputs(args)
