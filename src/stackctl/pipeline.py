"""The stage sequence every deploying command shares: inputs -> resolve -> lock -> render.

Pure functions over typed inputs, so that `apply`, `fleet` and `image` drive the same stages;
argument parsing stays in stackctl.cli.pipeline and printing in the commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackctl.bench.tuning import tuned, tuning_ref
from stackctl.catalog import load_catalog
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
from stackctl.models.render import HostLayout
from stackctl.models.resolved import ResolvedStack
from stackctl.models.spec import ModelPin, StackSpec
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


def load_stack_inputs(
    stack: str | None, hardware: HardwareProfile, hardware_path: Path | None = None
) -> Inputs:
    """A stack (file or shipped name; None = default) and a profile, with the shipped catalog."""
    spec_path = stack_path(stack)
    return Inputs(
        load_stack(spec_path), spec_path, hardware, hardware_path, load_catalog(catalog_dir())
    )


def display_path(path: Path) -> str:
    """Repo- or cwd-relative where possible, so locks carry no machine-specific paths."""
    resolved = path.resolve()
    for base in (Path.cwd().resolve(), data_root().resolve()):
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return str(path)


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
        tuning=tuning_ref(inputs.spec.name, inputs.hardware.name),
    )


def resolve_on_backend(inputs: Inputs, model: str, quant: str, backend: str) -> ResolvedStack:
    """The stack with its model, quant and backend held: what the sweep compares backends on,
    and what a lock takes when another backend won."""
    held = {"model": model, "quant": quant, "backend": backend}
    base = inputs.spec.pin.model_dump() if inputs.spec.pin is not None else {}
    pin = ModelPin.model_validate({**base, **held})
    spec = inputs.spec.model_copy(update={"pin": pin})
    return resolve_stack(spec, inputs.hardware, inputs.catalog)


def make_lock(inputs: Inputs) -> Lockfile:
    resolved = resolve_stack(inputs.spec, inputs.hardware, inputs.catalog)
    resolved = tuned(  # the sweep's flags, and its backend where another won
        resolved,
        inputs.spec.name,
        inputs.hardware.name,
        lambda model, quant, backend: resolve_on_backend(inputs, model, quant, backend),
    )
    return make_lockfile(resolved, lock_inputs(inputs))


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


def render_lock(lock: Lockfile, lock_path: Path, out: Path, host: HostLayout | None = None) -> Path:
    """Render `lock` into `out`; `host`: the layout to install into (default: the standard one)."""
    # Jinja2 and the templates load only for commands that render: plan stays quick.
    from stackctl.render import make_environment, render_stack, write_tree

    files = render_stack(
        lock,
        make_environment(templates_dir()),
        roles=roles_dir(),
        lock_name=display_path(lock_path),
        host=host,
    )
    write_tree(files, out)
    return out


def read_lock(path: Path) -> Lockfile:
    if not path.is_file():
        raise InputError(f"{path}: no such lockfile", hint="create it with `stackctl lock`")
    return read_lockfile(path)


def recorded_path(path: str) -> Path:
    """A path a lock recorded: cwd-relative first, then relative to the shipped data."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shipped = data_root() / path
    return shipped if shipped.exists() else candidate
