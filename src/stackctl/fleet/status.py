"""`fleet status`: per host, from the controller: is the server up, where, measured vs predicted."""

from __future__ import annotations

from pathlib import Path

from stackctl.errors import StackctlError
from stackctl.fleet.inventory import read_inventory
from stackctl.fleet.plan import written_lock_path
from stackctl.fleet.run import host_key_file, read_host_key
from stackctl.layout import is_loopback
from stackctl.models.base import StrictModel
from stackctl.models.fleet import FleetHost
from stackctl.pipeline import read_lock
from stackctl.service import is_healthy


class HostStatus(StrictModel):
    host: str
    lock: str | None
    endpoint: str | None
    up: bool | None = None  # None: cannot be told from the controller
    predicted_tg_tps: float | None = None
    measured_tg_tps: float | None = None
    # where the controller keeps the key this host's server demands (None: it demands none)
    api_key_file: str | None = None
    note: str = ""


def _one(host: FleetHost, base: Path, inventory: Path, measure: bool) -> HostStatus:
    from stackctl.apply import smoke_test

    name = host.name
    try:
        path = written_lock_path(host, base)
        lock = read_lock(path)
    except StackctlError as exc:
        return HostStatus(host=name, lock=None, endpoint=None, note=exc.message)
    runtime = lock.resolved.runtime
    predicted = lock.resolved.predicted.tg_tps
    if is_loopback(runtime.host):
        return HostStatus(
            host=name,
            lock=str(path),
            endpoint=f"http://{runtime.host}:{runtime.port} (on the host)",
            predicted_tg_tps=predicted,
            note="listens on loopback only: not reachable from here",
        )
    url = f"http://{host.address}:{runtime.port}"
    up = is_healthy(url)  # /health answers without the key
    key = read_host_key(inventory, name)
    key_file = str(host_key_file(inventory, name)) if key else None
    measured, note = None, ""
    if up and key is None:
        note = "no API key on this controller for it: apply -i this inventory from here first"
    elif up and measure:
        try:
            kind = lock.resolved.model.kind
            done = smoke_test(url, model=lock.resolved.model.id, kind=kind, api_key=key)
            measured = done.tg_tps
        except StackctlError as exc:
            note = exc.message
    return HostStatus(
        host=name, lock=str(path), endpoint=url, up=up,
        predicted_tg_tps=predicted, measured_tg_tps=measured, api_key_file=key_file, note=note,
    )  # fmt: skip


def fleet_status(inventory_path: Path, *, measure: bool = True) -> list[HostStatus]:
    inventory = read_inventory(inventory_path)
    base = Path(inventory.path).parent
    return [_one(h, base, inventory_path, measure) for h in inventory.hosts]
