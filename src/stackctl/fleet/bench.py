"""`bench -i INVENTORY`: which hosts can be measured from the controller, and how to reach them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stackctl.errors import StackctlError
from stackctl.fleet.inventory import limit_hosts, read_inventory
from stackctl.fleet.plan import host_hardware, written_lock_path
from stackctl.fleet.run import read_host_key
from stackctl.layout import is_loopback
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.pipeline import read_lock


@dataclass(frozen=True)
class BenchTarget:
    host: str
    lock: Lockfile
    hardware: HardwareProfile
    url: str
    api_key: str | None = field(default=None, repr=False)


def bench_targets(
    inventory_path: Path, limit: str | None = None
) -> tuple[list[BenchTarget], dict[str, str]]:
    """The hosts to measure, and host -> why not for the others (in inventory order)."""
    inventory = read_inventory(inventory_path)
    chosen = limit_hosts(inventory_path, limit) if limit else None
    base = Path(inventory.path).parent
    targets: list[BenchTarget] = []
    skipped: dict[str, str] = {}
    for host in inventory.hosts:
        if chosen is not None and host.name not in chosen:
            continue
        try:
            lock = read_lock(written_lock_path(host, base))
            hardware, _path = host_hardware(host, base)
        except StackctlError as exc:
            skipped[host.name] = exc.message
            continue
        runtime = lock.resolved.runtime
        if is_loopback(runtime.host):
            skipped[host.name] = "listens on loopback only: run `stackctl bench` on the host"
            continue
        key = read_host_key(inventory_path, host.name)
        if key is None:
            skipped[host.name] = "no API key for it here: run `stackctl apply -i` from here first"
            continue
        url = f"http://{host.address}:{runtime.port}"
        targets.append(BenchTarget(host.name, lock, hardware, url, key))
    return targets, skipped
