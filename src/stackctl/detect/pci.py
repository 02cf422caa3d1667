"""PCI device IDs -> name, die and arch (src/stackctl/data/pci_gpus.json, generated from Debian's
pci.ids by scripts/gen_pci_snapshot.py), for sources that print only IDs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stackctl.errors import CatalogError

SNAPSHOT = Path(__file__).resolve().parent.parent / "data" / "pci_gpus.json"
VENDOR_IDS = {"1002": "amd", "10de": "nvidia"}


@dataclass(frozen=True)
class PciGpu:
    pci_id: str
    name: str
    die: str | None
    arch: str | None

    @property
    def product(self) -> str:
        """'Navi 31 [Radeon RX 7900 XT/7900 XTX]' -> 'Radeon RX 7900 XT/7900 XTX'; the die
        name when pci.ids gives no product."""
        m = re.search(r"\[([^\]]+)\]", self.name)
        return m.group(1) if m else self.name


@cache
def load_pci_table(path: Path = SNAPSHOT) -> dict[str, PciGpu]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {
            key: PciGpu(key, str(row[0]), row[1], row[2]) for key, row in doc["devices"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CatalogError(f"{path}: PCI ID snapshot unreadable ({exc})") from exc


def norm_pci_id(vendor: str | None, device: str | None) -> str | None:
    """('0x1002', '0x73ff') / ('1002', '73FF') -> '1002:73ff'."""
    if not vendor or not device:
        return None
    v = vendor.lower().removeprefix("0x").zfill(4)[-4:]
    d = device.lower().removeprefix("0x").zfill(4)[-4:]
    if not re.fullmatch(r"[0-9a-f]{4}", v) or not re.fullmatch(r"[0-9a-f]{4}", d):
        return None
    return f"{v}:{d}"


def lookup_pci(pci_id: str | None) -> PciGpu | None:
    return load_pci_table().get(pci_id.lower()) if pci_id else None
