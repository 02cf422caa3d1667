"""Declared hardware: a profile for a box you do not have, built from names in the chip table."""

from __future__ import annotations

import re

from stackctl.detect.chips import (
    ASSUMED_SHARE,
    ChipEntry,
    ChipTable,
    HostPlatform,
    SystemEntry,
    closest_names,
    load_chip_table,
    match_chips,
    norm_name,
    pick_variant,
    wired_share,
)
from stackctl.errors import HardwareError
from stackctl.models.hardware import Accelerator, CpuInfo, HardwareProfile, MemoryInfo, OsInfo

GIB = 1024**3


def _unknown(kind: str, name: str, table: ChipTable, *, gpu: bool | None) -> HardwareError:
    near = closest_names(table, name, gpu=gpu)
    return HardwareError(
        f"unknown {kind} '{name}'",
        details=[f"closest known: {', '.join(near)}"] if near else [],
        hint="names come from catalog/hardware.yaml; case and vendor prefixes do not matter",
    )


def _one(
    kind: str,
    name: str,
    hits: list[ChipEntry],
    table: ChipTable,
    gpu: bool | None,
    ram_gib: float | None = None,
    notes: list[str] | None = None,
) -> ChipEntry:
    if not hits:
        raise _unknown(kind, name, table, gpu=gpu)
    return pick_variant(kind, name, hits, ram_gib, notes if notes is not None else [])


def find_gpu(
    table: ChipTable, name: str, ram_gib: float | None = None, notes: list[str] | None = None
) -> ChipEntry:
    return _one("GPU", name, match_chips(table, name, gpu=True), table, True, ram_gib, notes)


def find_cpu(
    table: ChipTable, name: str, ram_gib: float | None = None, notes: list[str] | None = None
) -> ChipEntry:
    hits = [c for c in match_chips(table, name) if c.kind in {"cpu", "apu", "soc"}]
    return _one("CPU", name, hits, table, False, ram_gib, notes)


def _system_entry(table: ChipTable, key: str) -> SystemEntry | None:
    for system in table.systems:
        keys = {norm_name(system.name), norm_name(system.id), *map(norm_name, system.aliases)}
        if key in keys:
            return system
    return None


def find_system(
    table: ChipTable, name: str, ram_gib: float | None = None, notes: list[str] | None = None
) -> tuple[ChipEntry, float | None]:
    """'Strix Halo 128GB', 'MacBook Pro M3 Max 128GB', 'DGX Spark' -> (chip, RAM GiB)."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:gb|gib|g)\b", name, re.I)
    ram = float(m.group(1)) if m else None
    ram = ram_gib if ram_gib is not None else ram
    rest = (name[: m.start()] + name[m.end() :]) if m else name
    system = _system_entry(table, norm_name(rest))
    if system is not None:
        if ram is None and len(system.ram_gib) == 1:
            ram = system.ram_gib[0]
        chip = table.by_id(system.chip)
        hits = [chip] if chip is not None else match_chips(table, system.chip)
        if not hits:
            raise HardwareError(f"system '{system.id}' names unknown chip '{system.chip}'")
        return _one("system", name, hits, table, None, ram, notes), ram
    hits = [c for c in match_chips(table, rest) if c.kind in {"apu", "soc"}]
    if not hits:
        raise _unknown("system", name, table, gpu=None)
    return _one("system", name, hits, table, None, ram, notes), ram


def _unified_budget(
    chip: ChipEntry,
    ram: int | None,
    table: ChipTable,
    pos: int,
    notes: list[str],
    defaults: list[str],
) -> int | None:
    if ram is None:
        notes.append(f"{chip.name}: unified memory but no RAM size given (--ram); budget unknown")
        return None
    if chip.vendor == "amd":
        # Kernel default without ttm.pages_limit: GTT = half of RAM (engines.md 4.3).
        defaults.append(f"accelerators.{pos}.memory_budget_bytes")
        notes.append(
            f"{chip.name}: GPU budget assumes the kernel's default GTT (half of RAM); "
            "raise it with ttm.pages_limit"
        )
        return ram // 2
    if chip.vendor == "apple":
        found = wired_share(table, ram)
        if found is None:
            notes.append(f"{chip.name}: macOS default wired share for this RAM size unknown")
            return None
        rule, assumed = found
        defaults.append(f"accelerators.{pos}.memory_budget_bytes")
        notes.append(f"{chip.name}: GPU budget is macOS's default {rule.share:.0%} of RAM"
                     + (ASSUMED_SHARE if assumed else ""))  # fmt: skip
        return int(ram * rule.share)
    return ram


def _accelerator(
    chip: ChipEntry,
    pos: int,
    ram: int | None,
    table: ChipTable,
    notes: list[str],
    defaults: list[str],
) -> Accelerator:
    if chip.unified or chip.kind in {"apu", "soc"}:
        if ram is None and chip.vendor == "nvidia" and chip.memory_gib:
            ram = int(chip.memory_gib * GIB)  # a Jetson module's memory is the box's
        memory = ram
        budget = _unified_budget(chip, ram, table, pos, notes, defaults)
    else:
        memory = int(chip.memory_gib * GIB) if chip.memory_gib else None
        budget = memory
    clock_mhz, clock_source = chip.gpu_clock
    return Accelerator(
        vendor=chip.vendor or "intel",
        name=chip.name,
        arch=chip.arch,
        memory_bytes=memory,
        unified=chip.unified or chip.kind in {"apu", "soc"},
        memory_budget_bytes=budget,
        bandwidth_gbps=chip.bandwidth_gbps,
        bandwidth_source=f"catalog/hardware.yaml {chip.id}: {chip.bandwidth_source}"
        if chip.bandwidth_gbps
        else None,
        index=pos,
        integrated=chip.integrated,
        gpu_cores=chip.gpu_cores,
        peak_tflops_fp16=chip.peak_tflops_fp16,
        peak_tops_int8=chip.peak_tops_int8,
        peak_source=chip.peak_source,
        clock_mhz=clock_mhz,
        clock_source=clock_source,
        chip=chip.id,
        host_link=chip.host_link,
        host_link_source=chip.host_link_source,
        budget_source="declared (chip table)",
    )


def _platform(table: ChipTable, gpus: list[ChipEntry]) -> HostPlatform | None:
    """The kind of box a GPU goes into: data-centre parts into servers, mobile parts into
    laptops, the rest into desktops."""
    segments = {g.segment for g in gpus}
    if "datacenter" in segments:
        return table.platform("server")
    if "mobile" in segments:
        return table.platform("laptop")
    return table.platform("desktop")


def _cpu_info(
    cpu: ChipEntry | None, gpus: list[ChipEntry], notes: list[str], table: ChipTable
) -> CpuInfo:
    arch = cpu.cpu_arch if cpu else None
    if arch is None and any(g.vendor == "apple" for g in gpus):
        arch = "arm64"
    bw = cpu.bandwidth_gbps if cpu else None
    source = f"catalog/hardware.yaml {cpu.id}: {cpu.bandwidth_source}" if cpu and bw else None
    low = high = None
    design = table.cpu_cores.get(cpu.cpu_core) if cpu and cpu.cpu_core else None
    if cpu is not None and design is None:
        notes.append(f"CPU '{cpu.name}' names no core design in catalog/hardware.yaml: ISA unknown")
    if cpu is None:
        platform = _platform(table, gpus)
        if platform is not None:
            bw, low, high = platform.bandwidth_gbps, platform.low_gbps, platform.high_gbps
            source = f"no CPU declared: {platform.source}"
        notes.append(
            "no CPU declared (--cpu): CPU cores and flags unknown; host memory bandwidth is "
            + (f"a {platform.name} box's typical {low:g}-{high:g} GB/s" if platform else "unknown")
        )
    return CpuInfo(
        model=(cpu.cpu_model or cpu.name) if cpu else None,
        arch=arch or "unknown",
        cores=cpu.cpu_cores if cpu else None,
        threads=cpu.cpu_threads if cpu else None,
        flags=list(design.isa) if design else [],  # as Linux reports the design's ISA
        bandwidth_gbps=bw,
        bandwidth_low_gbps=low,
        bandwidth_high_gbps=high,
        bandwidth_source=source,
        performance_cores=cpu.cpu_performance_cores if cpu else None,
        efficiency_cores=cpu.cpu_efficiency_cores if cpu else None,
        chip=cpu.id if cpu else None,
        core=cpu.cpu_core if cpu else None,
    )


def declare_hardware(
    *,
    gpus: list[str],
    gpu_count: int | None = None,
    cpu: str | None = None,
    ram_gib: float | None = None,
    system: str | None = None,
    table: ChipTable | None = None,
) -> HardwareProfile:
    """A profile from names: `--gpu` (repeatable) x `--gpu-count`, `--cpu`, `--ram`, `--system`."""
    table = table or load_chip_table()
    notes: list[str] = []
    sys_chip, sys_ram = find_system(table, system, ram_gib, notes) if system else (None, None)
    ram_hint = ram_gib if ram_gib is not None else sys_ram
    gpu_chips = [find_gpu(table, name, ram_hint, notes) for name in gpus]
    if gpu_count is not None:
        if gpu_count < 1:
            raise HardwareError(f"--gpu-count must be at least 1, not {gpu_count}")
        if len(gpu_chips) != 1:
            raise HardwareError("--gpu-count needs exactly one --gpu NAME")
        gpu_chips = gpu_chips * gpu_count
    if sys_chip is not None and sys_chip.has_gpu and not gpu_chips:
        gpu_chips = [sys_chip]
    cpu_chip = find_cpu(table, cpu, ram_hint, notes) if cpu else sys_chip
    if cpu_chip is None:  # an SoC or APU declared as the GPU is the CPU too
        cpu_chip = next((g for g in gpu_chips if g.kind == "soc" and g.cpu_arch), None)
    ram_value = ram_hint
    if ram_value is not None and ram_value <= 0:
        raise HardwareError(f"--ram must be a positive number of GiB, not {ram_value}")
    ram = int(ram_value * GIB) if ram_value is not None else None
    defaults: list[str] = []
    accels = [_accelerator(c, i, ram, table, notes, defaults) for i, c in enumerate(gpu_chips)]
    apple = any(g.vendor == "apple" for g in gpu_chips)
    if not apple:
        defaults.append("os.system")
    parts = [_profile_part(c) for c in ([sys_chip] if sys_chip else []) + gpu_chips[:1]]
    count = f"x{len(gpu_chips)}" if len(gpu_chips) > 1 else ""
    name = (
        "-".join(dict.fromkeys(parts)) + count
        if parts
        else (_profile_part(cpu_chip) if cpu_chip else "declared")
    )
    return HardwareProfile(
        name=name,
        source="declared",
        cpu=_cpu_info(cpu_chip, gpu_chips, notes, table),
        memory=MemoryInfo(total_bytes=ram),
        accelerators=accels,
        os=OsInfo(system="darwin" if apple else "linux"),
        defaults=defaults,
        warnings=notes,
    )


def _profile_part(chip: ChipEntry) -> str:
    """A chip's part of the profile name: its family for core-count variants ('apple-m3-ultra'),
    so a lockfile's name does not change with the variant the RAM settled."""
    return re.sub(r"[^a-z0-9]+", "-", chip.family.lower()).strip("-") if chip.family else chip.id
