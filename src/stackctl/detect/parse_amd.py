"""Pure parsers for AMD sources: rocminfo, rocm-smi, amd-smi, KFD topology, amdgpu sysfs."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from stackctl.detect.facts import GpuFacts, clean, json_object, norm_pci, parse_size, to_int


@dataclass
class RocminfoFacts:
    gpus: list[GpuFacts] = field(default_factory=list)
    cpu_model: str | None = None
    cpu_threads: int | None = None
    cpu_agents: int = 0
    npus: list[str] = field(default_factory=list)
    runtime_version: str | None = None


def _agent_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if (
            re.match(r"^\s*Agent\s+\d+\s*$", line)
            and i > 0
            and lines[i - 1].strip().startswith("***")
        ):
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
    return blocks


def _agent_fields(block: list[str]) -> tuple[dict[str, str], list[tuple[str, int]], list[str]]:
    """Top-level fields of an agent, its (segment, bytes) pools, and its ISA names."""
    fields: dict[str, str] = {}
    pools: list[tuple[str, int]] = []
    isas: list[str] = []
    segment = ""
    for line in block:
        key, found, value = line.strip().partition(":")
        if not found:
            continue
        key, value = key.strip(), value.strip()
        indent = len(line) - len(line.lstrip())
        if key == "Segment":
            segment = value
        elif key == "Size" and segment:
            size = parse_size(value, "kb")
            if size is not None:
                pools.append((segment, size))
            segment = ""
        elif key == "Name" and indent > 2:
            isas.append(value)
        elif indent <= 2:
            fields.setdefault(key, value)
    return fields, pools, isas


def _bdf(value: str | None) -> str | None:
    bdf = to_int(value)
    if not bdf:
        return None
    return f"0000:{bdf >> 8 & 0xFF:02x}:{bdf >> 3 & 0x1F:02x}.{bdf & 0x7}"


def _rocm_gpu(index: int, fields: dict[str, str], pools: list[tuple[str, int]]) -> GpuFacts:
    gpu = GpuFacts("amd", "rocminfo", index=index)
    gpu.arch = clean(fields.get("Name"))
    gpu.name = clean(fields.get("Marketing Name")) or gpu.arch
    gpu.pci_bus_id = _bdf(fields.get("BDFID"))
    gpu.compute_units = to_int(fields.get("Compute Unit"))
    chip = to_int(fields.get("Chip ID"))
    gpu.pci_id = f"1002:{chip:04x}" if chip else None
    uuid = clean(fields.get("Uuid"))
    gpu.uuid = uuid if uuid and uuid != "GPU-XX" else None
    if "Memory Properties" in fields:
        gpu.integrated = "APU" in fields["Memory Properties"].split()
    coarse = [size for seg, size in pools if seg.startswith("GLOBAL") and "COARSE" in seg]
    if coarse:
        # The coarse-grained global pool is what hipMalloc draws from.
        gpu.budget_bytes = max(coarse)
        gpu.budget_source = "rocminfo GPU pool"
        if gpu.integrated is not True:
            gpu.memory_bytes = gpu.budget_bytes
    return gpu


def parse_rocminfo(text: str) -> RocminfoFacts:
    out = RocminfoFacts()
    m = re.search(r"^Runtime Version:\s*(\S+)", text, re.M)
    out.runtime_version = m.group(1) if m else None
    threads = 0
    for block in _agent_blocks(text):
        fields, pools, _isas = _agent_fields(block)
        kind = (clean(fields.get("Device Type")) or "").upper()
        if kind == "GPU":
            out.gpus.append(_rocm_gpu(len(out.gpus), fields, pools))
        elif kind == "CPU":
            out.cpu_agents += 1
            out.cpu_model = out.cpu_model or clean(fields.get("Marketing Name"))
            threads += to_int(fields.get("Compute Unit")) or 0
        elif kind:
            # XDNA NPUs ("aie2", Device Type DSP/AIE) are not LLM accelerators here.
            out.npus.append(clean(fields.get("Name")) or kind)
    out.cpu_threads = threads or None
    return out


@dataclass
class SmiFacts:
    gpus: list[GpuFacts] = field(default_factory=list)
    driver_version: str | None = None


def _smi_gpu(source: str, index: int, rec: dict[str, str]) -> GpuFacts:
    """A rocm-smi record; keys as the text, CSV and JSON forms spell them."""
    low = {k.strip().lower(): clean(v) for k, v in rec.items()}
    gpu = GpuFacts("amd", source, index=index)
    gpu.name = low.get("card series") or low.get("card model") or low.get("device name")
    gpu.arch = low.get("gfx version")
    gpu.pci_bus_id = norm_pci(low.get("pci bus") or low.get("bus"))
    did = low.get("device id") or low.get("did")
    if did and re.fullmatch(r"(0x)?[0-9a-fA-F]{1,4}", did):
        gpu.pci_id = f"1002:{int(did, 16):04x}"
    total = low.get("vram total memory (b)")
    gpu.memory_bytes = to_int(total) if total else None
    uid = low.get("unique id")
    gpu.uuid = f"GPU-{uid[2:]}" if uid and uid.startswith("0x") else None
    return gpu


def _smi_tables(lines: list[str], recs: dict[int, dict[str, str]]) -> None:
    """Column tables (`rocm-smi`, `--showhw`): a header row whose first cell is GPU, then one
    row per device; cells are separated by two or more spaces, headers name the columns."""
    header: list[str] = []
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in {"GPU", "Device"} and len(cells) > 2:
            header = cells
        elif header and cells and cells[0].isdigit() and len(cells) == len(header):
            rec = recs.setdefault(int(cells[0]), {})
            for key, value in zip(header[1:], cells[1:], strict=True):
                rec.setdefault(key, value)
        elif line.startswith("="):  # a banner ends the table
            header = []


def _smi_text(text: str) -> SmiFacts:
    out = SmiFacts()
    recs: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        m = re.match(r"^GPU\[(\d+)\]\s*:\s*(.+?):\s*(.*)$", line)
        if m:
            recs.setdefault(int(m[1]), {}).setdefault(m[2].strip(), m[3].strip())
        dm = re.match(r"^Driver version:\s*(\S+)", line)
        if dm:
            out.driver_version = dm.group(1)
    _smi_tables(text.splitlines(), recs)
    out.gpus = [_smi_gpu("rocm-smi", i, recs[i]) for i in sorted(recs)]
    return out


def _smi_csv(text: str) -> SmiFacts:
    out = SmiFacts()
    header: list[str] = []
    recs: dict[str, dict[str, str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if row and row[0] == "device":
            header = row
        elif header and row and row[0] in {"system", "cardsystem"} and len(row) == len(header):
            # older rocm-smi names the system row "cardsystem"
            out.driver_version = clean(dict(zip(header, row, strict=True)).get("Driver version"))
        elif header and row and re.fullmatch(r"card\d+", row[0]) and len(row) == len(header):
            recs.setdefault(row[0], {}).update(zip(header, row, strict=True))
    for pos, card in enumerate(sorted(recs, key=lambda c: to_int(c[4:]) or 0)):
        out.gpus.append(_smi_gpu("rocm-smi --csv", to_int(card[4:]) or pos, recs[card]))
    return out


def parse_rocm_smi(text: str) -> SmiFacts:
    """`rocm-smi` with any flags, text (`GPU[i] : key: value`) or `--csv`."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return _smi_csv(text) if first.startswith("device,") else _smi_text(text)


def parse_rocm_smi_json(text: str) -> SmiFacts:
    out = SmiFacts()
    data = json_object(text)
    if data is None:
        return out
    system = data.get("system")
    if isinstance(system, dict):
        out.driver_version = clean(str(system.get("Driver version", "")))
    cards = [k for k, v in data.items() if k.startswith("card") and isinstance(v, dict)]
    for pos, card in enumerate(sorted(cards, key=lambda c: to_int(c[4:]) or 0)):
        rec = {str(k): str(v) for k, v in data[card].items()}
        out.gpus.append(_smi_gpu("rocm-smi --json", to_int(card[4:]) or pos, rec))
    return out


def _amd_smi_gpu(index: int, rec: dict[str, Any]) -> GpuFacts:
    def get(*path: str) -> str | None:
        node: Any = rec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and "value" in node:
            node = f"{node['value']} {node.get('unit', '')}"
        return clean(str(node)) if node is not None else None

    gpu = GpuFacts("amd", "amd-smi static", index=index)
    gpu.name = get("asic", "market_name")
    gpu.arch = get("asic", "target_graphics_version")
    gpu.pci_bus_id = norm_pci(get("bus", "bdf"))
    size = get("vram", "size")
    gpu.memory_bytes = parse_size(size, "mb") if size else None
    gpu.driver_version = get("driver", "version")
    dev = get("asic", "device_id")
    gpu.pci_id = f"1002:{to_int(dev):04x}" if to_int(dev) else None
    return gpu


def _lower_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k).strip().lower(): _lower_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_lower_keys(v) for v in node]
    return node


def parse_amd_smi_static_json(text: str) -> SmiFacts:
    out = SmiFacts()
    try:
        data = _lower_keys(json.loads(text))
    except ValueError:
        return out
    if isinstance(data, dict):
        data = data.get("gpu_data", [data])
    if not isinstance(data, list):
        return out
    for pos, rec in enumerate(r for r in data if isinstance(r, dict)):
        out.gpus.append(_amd_smi_gpu(to_int(str(rec.get("gpu", pos))) or pos, rec))
    return out


def parse_amd_smi_static(text: str) -> SmiFacts:
    """`amd-smi static` text: `GPU: N` blocks of indented `SECTION:` / `KEY: value` lines."""
    recs: list[dict[str, Any]] = []
    stack: list[tuple[int, dict[str, Any]]] = []
    for line in text.splitlines():
        key, found, value = line.strip().partition(":")
        if not found:
            continue
        indent = len(line) - len(line.lstrip())
        if key.strip() == "GPU" and indent == 0:
            recs.append({"gpu": value.strip()})
            stack = [(-1, recs[-1])]
            continue
        if not stack:
            continue
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        node = stack[-1][1]
        if value.strip():
            node[key.strip().lower()] = value.strip()
        else:
            child: dict[str, Any] = {}
            node[key.strip().lower()] = child
            stack.append((indent, child))
    out = SmiFacts()
    out.gpus = [_amd_smi_gpu(to_int(r.get("gpu")) or i, r) for i, r in enumerate(recs)]
    return out


def parse_kfd_properties(text: str) -> GpuFacts | None:
    """A KFD topology node's `properties`; None for CPU-only nodes."""
    props: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and to_int(parts[1]) is not None:
            props[parts[0]] = to_int(parts[1]) or 0
    if not props.get("simd_count"):
        return None
    gpu = GpuFacts("amd", "kfd topology")
    ver = props.get("gfx_target_version")
    if ver:
        # major*10000 + minor*100 + stepping; minor and stepping print as hex digits (gfx90a).
        gpu.arch = f"gfx{ver // 10000}{ver // 100 % 100:x}{ver % 100:x}"
    loc = props.get("location_id")
    gpu.pci_bus_id = _bdf(str(loc)) if loc else None
    if props.get("vendor_id") and props.get("device_id"):
        gpu.pci_id = f"{props['vendor_id']:04x}:{props['device_id']:04x}"
    return gpu


def parse_drm_card(files: dict[str, str]) -> GpuFacts | None:
    """An amdgpu `/sys/class/drm/cardN/device` directory: name -> file text.

    `mem_info_*` exist only for amdgpu, so they mark the card as AMD.
    """
    vram = parse_size(files.get("mem_info_vram_total", "").strip())
    gtt = parse_size(files.get("mem_info_gtt_total", "").strip())
    uevent = dict(
        line.partition("=")[::2] for line in files.get("uevent", "").splitlines() if "=" in line
    )
    vendor = clean(files.get("vendor"))
    if vram is None and gtt is None and vendor != "0x1002" and uevent.get("DRIVER") != "amdgpu":
        return None
    gpu = GpuFacts("amd", "sysfs drm", gtt_bytes=gtt, carveout_bytes=vram)
    gpu.pci_bus_id = norm_pci(uevent.get("PCI_SLOT_NAME"))
    pci = clean(uevent.get("PCI_ID"))
    dev = clean(files.get("device"))
    if pci:
        gpu.pci_id = pci.lower()
    elif dev and to_int(dev) is not None:
        gpu.pci_id = f"1002:{to_int(dev):04x}"
    return gpu
