"""Resolve every inventory host to its own lock through the shared pipeline.

A host's problem (a mistyped stack, unknown hardware, a shared address) becomes that host's
error; the others still resolve. Hosts with the same stack and hardware resolve once and get
byte-identical locks apart from their file name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl.detect import declare_hardware
from stackctl.errors import HardwareError, StackctlError
from stackctl.fleet.inventory import duplicate_addresses
from stackctl.lock import hardware_sha256, sha256_text
from stackctl.models.fleet import FleetHost, FleetInventory, HostPlan
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.pipeline import (
    Inputs,
    load_stack_inputs,
    make_lock,
    read_lock,
    require_fresh,
)
from stackctl.spec import load_profile, load_stack, stack_path

DETECTED_DIR = Path("profiles")  # where `fleet detect` saves each host's profile
HARDWARE_NAMES = {"gpu", "gpu_count", "cpu", "ram", "system"}


@dataclass(frozen=True)
class PlannedHost:
    host: FleetHost
    lock_path: Path
    lock: Lockfile | None = None
    error: str | None = None

    def summary(self) -> HostPlan:
        return HostPlan(
            host=self.host.name,
            stack=self.lock.resolved.stack if self.lock else self.host.stack,
            hardware=self.lock.resolved.hardware if self.lock else None,
            lock_path=str(self.lock_path) if self.lock else None,
            content_hash=self.lock.content_hash if self.lock else None,
            error=self.error,
        )


def fleet_lock_path(stack: str, host: str) -> Path:
    return Path("lockfiles") / f"{stack}.{host}.lock.yaml"


def detected_profile_path(host: str) -> Path:
    return DETECTED_DIR / f"{host}.yaml"


def _names(host: str, names: dict[str, Any]) -> HardwareProfile:
    unknown = sorted(set(names) - HARDWARE_NAMES)
    if unknown:
        raise HardwareError(
            f"stackctl_hardware of {host}: unknown key(s) {', '.join(unknown)}",
            hint=f"keys: {', '.join(sorted(HARDWARE_NAMES))}, or a profile file",
        )
    gpus = names.get("gpu") or []
    ram = names.get("ram")
    return declare_hardware(
        gpus=[gpus] if isinstance(gpus, str) else [str(g) for g in gpus],
        gpu_count=int(names["gpu_count"]) if names.get("gpu_count") is not None else None,
        cpu=names.get("cpu"),
        ram_gib=float(ram) if ram is not None else None,
        system=names.get("system"),
    )


def host_hardware(host: FleetHost, base: Path) -> tuple[HardwareProfile, Path | None]:
    """The declared names, the profile file (relative to the inventory), or the detected one."""
    if isinstance(host.hardware, dict):
        return _names(host.name, host.hardware), None
    if isinstance(host.hardware, str):
        path = base / host.hardware
        return load_profile(path), path
    path = detected_profile_path(host.name)
    if not path.is_file():
        raise HardwareError(
            f"no hardware for {host.name}: no stackctl_hardware and no {path}",
            hint="declare stackctl_hardware, or run `stackctl fleet detect -i INVENTORY`",
        )
    return load_profile(path), path


def _stack_arg(stack: str, base: Path) -> str:
    """A stack file is relative to the inventory; a bare name is a shipped stack."""
    if stack.endswith((".yaml", ".yml")) and not Path(stack).is_absolute():
        return str(base / stack)
    return stack


def written_lock_path(host: FleetHost, base: Path) -> Path:
    """Where `fleet lock` wrote this host's lock (its stack file must load to name it)."""
    return fleet_lock_path(host_stack_name(host, base), host.name)


def host_stack_name(host: FleetHost, base: Path) -> str:
    """The name of the host's stack (its lock file's first part); the stack file must load."""
    if host.stack is None:
        raise StackctlError(f"{host.name} has no stackctl_stack")
    return load_stack(stack_path(_stack_arg(host.stack, base))).name


def host_inputs(host: FleetHost, base: Path) -> Inputs:
    if host.stack is None:
        raise StackctlError(f"{host.name} has no stackctl_stack")
    hardware, hardware_path = host_hardware(host, base)
    return load_stack_inputs(_stack_arg(host.stack, base), hardware, hardware_path)


def _cache_key(inputs: Inputs) -> tuple[str, str, str]:
    spec = sha256_text(inputs.spec_path.read_text(encoding="utf-8"))
    return spec, hardware_sha256(inputs.hardware), str(inputs.hardware_path)


LockSource = Callable[[Inputs, Path], Lockfile]


def fresh_lock(inputs: Inputs, _path: Path) -> Lockfile:
    return make_lock(inputs)


def existing_or_fresh(relock: bool) -> LockSource:
    """The written lock where there is one (refused when stale, unless relock), else resolve."""

    def source(inputs: Inputs, path: Path) -> Lockfile:
        if path.is_file() and not relock:
            lock = read_lock(path)
            require_fresh(lock, path, inputs)
            return lock
        return make_lock(inputs)

    return source


def _message(exc: StackctlError) -> str:
    parts = [exc.message, *exc.details]
    if exc.source is not None:
        parts.insert(0, str(exc.source))
    if exc.hint:
        parts.append(f"hint: {exc.hint}")
    return "; ".join(parts)


def plan_fleet(
    inventory: FleetInventory,
    *,
    source: LockSource = fresh_lock,
    limit: set[str] | None = None,
) -> list[PlannedHost]:
    base = Path(inventory.path).parent
    shared = duplicate_addresses(inventory)
    resolved: dict[tuple[str, str, str], Lockfile] = {}
    plans: list[PlannedHost] = []
    for host in inventory.hosts:
        if limit is not None and host.name not in limit:
            continue
        path = fleet_lock_path(host.stack or "none", host.name)
        if host.name in shared:
            plans.append(PlannedHost(host, path, error=shared[host.name]))
            continue
        try:
            inputs = host_inputs(host, base)
            path = fleet_lock_path(inputs.spec.name, host.name)
            key = _cache_key(inputs)
            if key not in resolved or path.is_file():
                resolved[key] = source(inputs, path)
            plans.append(PlannedHost(host, path, lock=resolved[key]))
        except StackctlError as exc:
            plans.append(PlannedHost(host, path, error=_message(exc)))
    return plans
