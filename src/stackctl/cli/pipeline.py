"""The stage sequence the commands share: inputs -> resolve -> lock -> render."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from stackctl.catalog import load_catalog
from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.errors import InputError, LockStaleError
from stackctl.lock import (
    check_lockfile,
    hardware_sha256,
    make_lockfile,
    read_lockfile,
    sha256_text,
)
from stackctl.models.catalog import Catalog
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import InputRef, Lockfile, LockInputs
from stackctl.models.spec import StackSpec
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir, data_root, roles_dir, templates_dir
from stackctl.spec import load_stack, stack_path


@dataclass(frozen=True)
class Inputs:
    spec: StackSpec
    spec_path: Path
    hardware: HardwareProfile
    hardware_path: Path | None
    catalog: Catalog


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stack", nargs="?", help="stack file or shipped stack name (default: default)"
    )
    add_hardware_options(parser)


def display_path(path: Path) -> str:
    """Repo- or cwd-relative where possible, so locks carry no machine-specific paths."""
    resolved = path.resolve()
    for base in (Path.cwd().resolve(), data_root().resolve()):
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return str(path)


def load_inputs(args: argparse.Namespace) -> Inputs:
    spec_path = stack_path(args.stack)
    spec = load_stack(spec_path)
    hardware = hardware_from_args(args)
    hardware_path = Path(args.hardware) if getattr(args, "hardware", None) else None
    return Inputs(spec, spec_path, hardware, hardware_path, load_catalog(catalog_dir()))


def lock_inputs(inputs: Inputs) -> LockInputs:
    spec_text = inputs.spec_path.read_text(encoding="utf-8")
    hw_path = display_path(inputs.hardware_path) if inputs.hardware_path else None
    return LockInputs(
        stack=InputRef(
            name=inputs.spec.name,
            path=display_path(inputs.spec_path),
            sha256=sha256_text(spec_text),
        ),
        hardware=InputRef(
            name=inputs.hardware.name, path=hw_path, sha256=hardware_sha256(inputs.hardware)
        ),
        catalog=InputRef(name="catalog", path=None, sha256=inputs.catalog.sha256),
    )


def make_lock(inputs: Inputs) -> Lockfile:
    return make_lockfile(
        resolve_stack(inputs.spec, inputs.hardware, inputs.catalog), lock_inputs(inputs)
    )


def default_lock_path(stack: str, profile: str) -> Path:
    return Path("lockfiles") / f"{stack}.{profile}.lock.yaml"


def default_render_dir(lock: Lockfile) -> Path:
    return Path("build") / f"{lock.resolved.stack}.{lock.resolved.hardware}"


def require_fresh(lock: Lockfile, lock_path: Path, inputs: Inputs) -> None:
    status = check_lockfile(lock, lock_inputs(inputs))
    if not status.fresh:
        raise LockStaleError(
            f"{lock_path} is stale",
            details=status.reasons,
            hint="re-lock with `stackctl lock`, or pass --relock",
        )


def render_lock(lock: Lockfile, lock_path: Path, out: Path) -> Path:
    # Jinja2 and the templates load only for commands that render: plan stays quick.
    from stackctl.render import make_environment, render_stack, write_tree

    files = render_stack(
        lock,
        make_environment(templates_dir()),
        roles=roles_dir(),
        lock_name=display_path(lock_path),
    )
    write_tree(files, out)
    return out


def read_lock(path: Path) -> Lockfile:
    if not path.is_file():
        raise InputError(f"{path}: no such lockfile", hint="create it with `stackctl lock`")
    return read_lockfile(path)


def mirror_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "mirror", None) or os.environ.get("STACKCTL_MIRROR")
    return Path(value) if value else None


def recorded_path(path: str) -> Path:
    """A path a lock recorded: cwd-relative first, then relative to the shipped data."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shipped = data_root() / path
    return shipped if shipped.exists() else candidate


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
