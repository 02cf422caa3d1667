"""Intermediate facts that parsers return, and the helpers that merge them.

Parsers are pure: text in, facts out. A fact left as None means the text did not show it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Vendor = Literal["nvidia", "amd", "apple", "intel"]

KIB = 1024
MIB = 1024**2
GIB = 1024**3

_UNITS = {
    "b": 1,
    "k": KIB, "kb": KIB, "kib": KIB,
    "m": MIB, "mb": MIB, "mib": MIB,
    "g": GIB, "gb": GIB, "gib": GIB,
    "t": 1024**4, "tb": 1024**4, "tib": 1024**4,
}  # fmt: skip


@dataclass
class GpuFacts:
    """One accelerator as one source saw it."""

    vendor: Vendor
    source: str
    name: str | None = None
    index: int | None = None
    arch: str | None = None
    memory_bytes: int | None = None
    budget_bytes: int | None = None
    budget_source: str | None = None
    gtt_bytes: int | None = None
    carveout_bytes: int | None = None
    unified: bool | None = None
    integrated: bool | None = None
    driver_version: str | None = None
    runtime_version: str | None = None
    pci_bus_id: str | None = None
    pci_id: str | None = None
    uuid: str | None = None
    compute_capability: str | None = None
    mig_enabled: bool | None = None
    mig_instances: int | None = None
    mig_instance_bytes: int | None = None
    gpu_cores: int | None = None
    compute_units: int | None = None
    host_link: str | None = None  # the link it trained at, e.g. "PCIe 4.0 x16"
    notes: list[str] = field(default_factory=list)


@dataclass
class CpuFacts:
    model: str | None = None
    arch: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    performance_cores: int | None = None
    efficiency_cores: int | None = None
    flags: list[str] = field(default_factory=list)


_MERGE_SKIP = {"vendor", "source", "notes"}


def fill_missing(base: GpuFacts, other: GpuFacts) -> None:
    """Copy into `base` every field it lacks and `other` has."""
    for f in dataclasses.fields(GpuFacts):
        if f.name in _MERGE_SKIP:
            continue
        if getattr(base, f.name) is None and getattr(other, f.name) is not None:
            setattr(base, f.name, getattr(other, f.name))
    base.notes.extend(n for n in other.notes if n not in base.notes)


def _match(dev: GpuFacts, cands: list[GpuFacts], pos: int, same_len: bool) -> GpuFacts | None:
    for key in ("pci_bus_id", "uuid", "index"):
        value = getattr(dev, key)
        if value is None:
            continue
        hits = [c for c in cands if getattr(c, key) == value]
        if hits:
            return hits[0]
    return cands[pos] if same_len and pos < len(cands) else None


def merge_sources(sources: list[list[GpuFacts]]) -> list[GpuFacts]:
    """Merge per-source device lists (best source first) into one list of devices.

    The longest list fixes the device set (a partial source must not drop devices); the others
    fill gaps, matched by PCI bus id, UUID, index, or position when the counts agree.
    """
    lists = [s for s in sources if s]
    if not lists:
        return []
    base_list = max(lists, key=len)  # max keeps the first (best) of equal lengths
    merged = [dataclasses.replace(d, notes=list(d.notes)) for d in base_list]
    for other in lists:
        if other is base_list:
            continue
        same_len = len(other) == len(merged)
        for pos, dev in enumerate(merged):
            hit = _match(dev, other, pos, same_len)
            if hit is not None:
                fill_missing(dev, hit)
    return merged


def parse_size(text: str, default_unit: str = "b") -> int | None:
    """'24564 MiB', '16 GB', '201310208(0xbffc000) KB', '21458059264' -> bytes; None if not a size.

    Memory sizes from these tools are binary: 'GB' in system_profiler and 'MB' in nvidia-smi
    and amd-smi mean GiB and MiB.
    """
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:\(0x[0-9a-fA-F]+\))?\s*([A-Za-z]*)\s*$", text)
    if not m:
        return None
    unit = (m.group(2) or default_unit).lower()
    scale = _UNITS.get(unit)
    if scale is None:
        return None
    return int(float(m.group(1)) * scale)


def to_int(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.match(r"^\s*(0x[0-9a-fA-F]+|-?[0-9]+)", text)
    if not m:
        return None
    return int(m.group(1), 0)


def norm_pci(bus_id: str | None) -> str | None:
    """'00000000:01:00.0', '0000000F:01:00.0', '01:00.0' -> '0000:01:00.0' (lower case)."""
    if not bus_id:
        return None
    m = re.search(r"(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", bus_id)
    if not m:
        return None
    domain = int(m.group(1) or "0", 16)
    return f"{domain:04x}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"


def clean(value: str | None) -> str | None:
    """Strip and map the tools' 'unknown' spellings to None."""
    if value is None:
        return None
    value = value.strip().strip('"').strip()
    low = value.lower()
    if low in {"", "n/a", "[n/a]", "unknown", "none"} or low.lstrip("[").startswith(
        "not supported"
    ):
        return None
    return value


def json_object(text: str) -> dict[str, Any] | None:
    """A JSON document that is an object, or None for anything else (tools print odd things)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def key_values(text: str, sep: str = ":") -> dict[str, str]:
    """'key: value' lines -> dict; the first occurrence of a key wins."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out
