"""Regenerate src/stackctl/data/pci_gpus.json: AMD and NVIDIA PCI device ID -> name, die and
engine arch, for the sources that print only IDs (vulkaninfo, dmesg, sysfs, rocm-smi --showhw).

Names come from Debian's pci.ids (package `pci.ids`, the hwdata/pciutils database); the arch from
our die -> arch map (catalog/hardware.yaml gpu_families). Run:
    .venv/bin/python scripts/gen_pci_snapshot.py [/usr/share/misc/pci.ids]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from stackctl.detect.chips import load_chip_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "stackctl" / "data" / "pci_gpus.json"
VENDORS = {"1002": "amd", "10de": "nvidia"}
# Words in a device name that mark it as something other than a GPU (audio, bridges, USB ...).
_NOT_GPU = re.compile(
    r"audio|hdmi|usb|bridge|switch|root port|i2c|sata|smbus|ethernet|nvlink|pcie dummy|"
    r"ucsi|host|bus|function|crypto|psp|sensor|acp|gpp|iommu",
    re.I,
)


def _die(name: str, dies: list[str]) -> str | None:
    """The die a pci.ids name starts with ('GA102 [GeForce RTX 3090]', 'Navi 31 [...]')."""
    head = name.split("[")[0].strip()
    for die in sorted(dies, key=len, reverse=True):
        if re.match(rf"^{re.escape(die)}\b", head, re.I):
            return head[: len(die)]
    return None


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/misc/pci.ids")
    text = src.read_text(encoding="utf-8", errors="replace")
    version = re.search(r"^#\s*Version:\s*(\S+)", text, re.M)
    table = load_chip_table()
    arch_of: dict[tuple[str, str], str] = {
        (f.vendor, d.lower()): f.arch for f in table.gpu_families for d in f.chips
    }
    dies = {v: [d for (fv, d) in arch_of if fv == v] for v in VENDORS.values()}
    rows: dict[str, list[str | None]] = {}
    vendor = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            vendor = VENDORS.get(line[:4].lower())
            continue
        m = re.match(r"^\t([0-9a-fA-F]{4})\s+(.+)$", line)
        if vendor is None or m is None:
            continue
        name = m.group(2).strip()
        die = _die(name, dies[vendor])
        if die is None and (_NOT_GPU.search(name) or "[" not in name):
            continue
        key = f"{'1002' if vendor == 'amd' else '10de'}:{m.group(1).lower()}"
        rows[key] = [name, die, arch_of.get((vendor, die.lower())) if die else None]
    doc = {
        "schema_version": 1,
        "source": f"Debian pci.ids {version.group(1) if version else '?'} (hwdata/pciutils); "
        "arch from catalog/hardware.yaml gpu_families",
        "generated_by": "scripts/gen_pci_snapshot.py",
        "columns": ["name", "die", "arch"],
        "devices": dict(sorted(rows.items())),
    }
    OUT.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(rows)} devices")  # noqa: T201 - a developer script reports what it wrote


if __name__ == "__main__":
    main()
