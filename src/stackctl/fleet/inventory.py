"""Read an Ansible inventory with ansible-core's own parser (`ansible-inventory --list`).

YAML, INI and every other source Ansible reads work alike; stackctl never parses the file itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from stackctl.errors import InputError, SourceLoc
from stackctl.models.fleet import FleetHost, FleetInventory
from stackctl.yamlio import parse_yaml

STACK_VAR = "stackctl_stack"
HARDWARE_VAR = "stackctl_hardware"


class InventoryError(InputError):
    code = "inventory-invalid"


def ansible_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise InventoryError(f"{name} not found", hint="pip install ansible-core")
    return found


def _inventory_env() -> dict[str, str]:
    env = dict(os.environ)
    # A source no plugin can parse is an error, not an empty inventory with a warning.
    env.update(
        ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    return env


def _error_lines(stderr: str) -> list[str]:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("[WARNING]: Unable to parse")][-8:]


def list_inventory(path: Path, limit: str | None = None) -> dict[str, Any]:
    """`ansible-inventory -i PATH --list` as JSON; a file Ansible cannot parse is an error."""
    if not path.exists():
        raise InventoryError(f"{path}: no such inventory")
    done = subprocess.run(
        [ansible_tool("ansible-inventory"), "-i", str(path), "--list"]
        + (["--limit", limit] if limit else []),
        capture_output=True,
        text=True,
        env=_inventory_env(),
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise InventoryError(
            f"{path}: Ansible cannot parse this inventory",
            details=_error_lines(done.stderr),
            hint="check it with `ansible-inventory -i FILE --list`",
            source=_yaml_error_at(path),
        )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _yaml_error_at(path: Path) -> SourceLoc | None:
    """Where a YAML inventory's syntax breaks (Ansible's message does not always say)."""
    if path.suffix not in (".yml", ".yaml") or not path.is_file():
        return None
    try:
        parse_yaml(path.read_text(encoding="utf-8"), path, error=InventoryError)
    except InventoryError as exc:
        return exc.source
    return None


def _port(name: str, value: Any, path: Path) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InventoryError(
            f"{path}: host {name}: ansible_port {value!r} is not a number"
        ) from None


def _host(name: str, hostvars: dict[str, Any], path: Path) -> FleetHost:
    stack = hostvars.get(STACK_VAR)
    hardware = hostvars.get(HARDWARE_VAR)
    if hardware is not None and not isinstance(hardware, str | dict):
        raise InventoryError(
            f"{path}: host {name}: {HARDWARE_VAR} must be a profile file or a mapping of names"
        )
    return FleetHost(
        name=name,
        address=str(hostvars.get("ansible_host", name)),
        port=_port(name, hostvars.get("ansible_port", 22), path),
        stack=str(stack) if stack is not None else None,
        hardware=hardware,
    )


def read_inventory(path: Path) -> FleetInventory:
    data = list_inventory(path)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    names = _all_hosts(data)
    if not names:
        raise InventoryError(f"{path}: the inventory has no hosts")
    return FleetInventory(
        path=str(path), hosts=[_host(n, hostvars.get(n, {}), path) for n in sorted(names)]
    )


def limit_hosts(path: Path, patterns: str) -> set[str]:
    """The hosts an Ansible --limit pattern (hosts, groups, wildcards) selects."""
    names = _all_hosts(list_inventory(path, patterns))
    if not names:
        raise InventoryError(f"{path}: --limit {patterns} matches no host")
    return names


def _all_hosts(data: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for group, body in data.items():
        if group != "_meta" and isinstance(body, dict):
            names.update(body.get("hosts", []))
    return names


def duplicate_addresses(inventory: FleetInventory) -> dict[str, str]:
    """host -> error, for hosts that share an address and port with another host."""
    seen: dict[tuple[str, int], list[str]] = {}
    for host in inventory.hosts:
        seen.setdefault((host.address, host.port), []).append(host.name)
    errors: dict[str, str] = {}
    for (address, port), hosts in seen.items():
        if len(hosts) > 1:
            for name in hosts:
                others = ", ".join(h for h in hosts if h != name)
                errors[name] = f"same address {address}:{port} as {others}"
    return errors
