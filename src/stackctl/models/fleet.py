"""Contracts of the fleet stages: inventory hosts in, per-host plans and run results out."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stackctl.models.base import StrictModel


class FleetHost(StrictModel):
    """One inventory host as Ansible's own inventory parser sees it (group vars merged)."""

    name: str
    address: str = Field(description="ansible_host, else the inventory name")
    port: int = 22
    stack: str | None = Field(description="stackctl_stack: a shipped name or a file")
    hardware: str | dict[str, Any] | None = Field(
        description="stackctl_hardware: a profile file, or names as the --gpu/--cpu/--ram/--system "
        "options take them; None: use the profile `fleet detect` saved"
    )


class FleetInventory(StrictModel):
    path: str
    hosts: list[FleetHost]


class HostPlan(StrictModel):
    """A host's resolved stack (its lock) or why it has none."""

    host: str
    stack: str | None
    hardware: str | None = Field(description="the profile's name")
    lock_path: str | None
    content_hash: str | None
    error: str | None = None


class HostOutcome(StrictModel):
    """How one host came out of a fleet run."""

    host: str
    status: str = Field(description="ok | changed | failed | unreachable | skipped | not-planned")
    changed: int = 0
    message: str = ""
