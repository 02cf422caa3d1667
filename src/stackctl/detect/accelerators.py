"""Accelerators: gather every vendor source a runner offers, merge, and settle what an engine
can really use (VRAM, one MIG slice, the GTT pool, the Metal wired limit)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from stackctl.detect import parse_amd as amd
from stackctl.detect import parse_apple as mac
from stackctl.detect import parse_nvidia as nv
from stackctl.detect.chips import (
    ChipEntry,
    ChipTable,
    family_of,
    match_arch,
    match_chips,
    pick_variant,
)
from stackctl.detect.facts import GIB, MIB, GpuFacts, Vendor, merge_sources
from stackctl.detect.parse_linux import CmdlineFacts, parse_dmesg_amdgpu
from stackctl.detect.parse_psutil import PsutilFacts
from stackctl.detect.pci import PciGpu, lookup_pci, norm_pci_id
from stackctl.detect.runner import DRM_FILES, DRM_ROOT, KFD_NODES, Runner
from stackctl.models.hardware import VulkanDevice

T = TypeVar("T")


@dataclass
class Context:
    """What the accelerator stage needs from the rest of the box."""

    runner: Runner
    table: ChipTable
    host_total: int | None = None
    cmdline: CmdlineFacts = field(default_factory=CmdlineFacts)
    cpu_chip: ChipEntry | None = None
    sysctl: dict[str, str] = field(default_factory=dict)
    mac: mac.MacFacts = field(default_factory=mac.MacFacts)
    warnings: list[str] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)
    vulkan: list[VulkanDevice] | None = None
    ggml_vulkan: list[tuple[str, str]] = field(default_factory=list)  # (name, matrix path)
    psutil: PsutilFacts = field(default_factory=PsutilFacts)


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | dict | tuple | set | str):
        return all(_empty(v) for v in value) if isinstance(value, tuple) else not value
    if is_dataclass(value) and not isinstance(value, type):
        return all(_empty(getattr(value, f.name)) for f in fields(value))
    return False


def looks_binary(text: str) -> bool:
    sample = text[:4096]
    bad = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f"))
    return "\x00" in sample or bad > len(sample) // 10


def probe(
    ctx: Context,
    name: str,
    parser: Callable[[str], T],
    *,
    file: bool = False,
    may_be_empty: bool = False,
) -> T | None:
    """Read one source and parse it; odd, empty or unparseable text gives a warning, not a crash."""
    text = ctx.runner.read_file(name) if file else ctx.runner.run(name)
    label = name if file else f"cmd/{name}"
    if text is None:
        return None
    if not text.strip():
        ctx.warnings.append(f"{label} is empty; ignored")
        return None
    if looks_binary(text):
        ctx.warnings.append(f"{label} is not text (binary or corrupt); ignored")
        return None
    try:
        result = parser(text)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        ctx.warnings.append(f"{label} could not be parsed ({type(exc).__name__}); ignored")
        return None
    ctx.seen[label] = text
    if _empty(result) and not may_be_empty:
        ctx.warnings.append(f"{label}: nothing recognisable in it; ignored")
    return result


# --- NVIDIA ----------------------------------------------------------------------------------


def nvidia_sources(ctx: Context) -> list[GpuFacts]:
    parsed = [
        probe(ctx, "nvml.txt", nv.parse_nvml),
        probe(ctx, "nvidia-smi-q.xml", nv.parse_nvidia_smi_xml),
        probe(ctx, "nvidia-smi-q.txt", nv.parse_nvidia_smi_q),
        probe(ctx, "nvidia-smi-query.csv", nv.parse_nvidia_smi_csv),
        probe(ctx, "nvidia-smi.txt", nv.parse_nvidia_smi),
        probe(ctx, "nvidia-smi-L.txt", nv.parse_nvidia_smi_list),
    ]
    found = [p for p in parsed if p is not None]
    driver = next((p.driver_version for p in found if p.driver_version), None)
    cuda = next((p.cuda_version for p in found if p.cuda_version), None)
    for p in found:
        ctx.warnings.extend(w for w in p.warnings if w not in ctx.warnings)
        p.driver_version = p.driver_version or driver
        p.cuda_version = p.cuda_version or cuda
    return merge_sources([p.stamp() for p in found])


# --- AMD -------------------------------------------------------------------------------------


def _drm_cards(ctx: Context) -> list[GpuFacts]:
    cards = [c for c in ctx.runner.list_dir(DRM_ROOT) or [] if re.fullmatch(r"card\d+", c)]
    out = []
    for card in sorted(cards, key=lambda c: int(c[4:])):
        files = {}
        for name in DRM_FILES:
            text = ctx.runner.read_file(f"{DRM_ROOT}/{card}/device/{name}")
            if text is not None and not looks_binary(text):
                files[name] = text
        gpu = amd.parse_drm_card(files) if files else None
        if gpu is not None:
            gpu.notes.append(f"sysfs {card}")
            out.append(gpu)
        elif files:
            ctx.warnings.append(f"{DRM_ROOT}/{card}/device: no readable amdgpu memory pools")
    return out


def _kfd_nodes(ctx: Context) -> list[GpuFacts]:
    nodes = [n for n in ctx.runner.list_dir(KFD_NODES) or [] if n.isdigit()]
    out = []
    for node in sorted(nodes, key=int):
        gpu = probe(ctx, f"{KFD_NODES}/{node}/properties", amd.parse_kfd_properties, file=True)
        if gpu is not None:
            out.append(gpu)
    return out


def amd_sources(ctx: Context) -> tuple[list[GpuFacts], amd.RocminfoFacts | None]:
    rocm = probe(ctx, "rocminfo.txt", amd.parse_rocminfo)
    smis = [
        probe(ctx, "amd-smi-static.json", amd.parse_amd_smi_static_json),
        probe(ctx, "amd-smi-static.txt", amd.parse_amd_smi_static),
        probe(ctx, "rocm-smi.json", amd.parse_rocm_smi_json),
        probe(ctx, "rocm-smi.txt", amd.parse_rocm_smi),
    ]
    driver = next((s.driver_version for s in smis if s and s.driver_version), None)
    lists = [rocm.gpus if rocm else []] + [s.gpus for s in smis if s]
    lists += [_kfd_nodes(ctx), _drm_cards(ctx)]
    gpus = merge_sources(lists)
    dmesg = probe(ctx, "dmesg-amdgpu.txt", parse_dmesg_amdgpu) or []
    gpus = merge_sources([gpus, dmesg]) if gpus else dmesg
    if dmesg and not any(s for s in smis) and not rocm:
        ctx.warnings.append(
            "AMD GPU(s) seen only in the kernel log: no ROCm tool output; rocm-smi or the "
            "amdgpu sysfs files (mem_info_vram_total) would show their memory"
        )
    for gpu in gpus:
        gpu.driver_version = gpu.driver_version or driver
    return gpus or vulkan_gpus(ctx, "amd"), rocm


def vulkaninfo_devices(ctx: Context) -> list[VulkanDevice]:
    if ctx.vulkan is None:
        ctx.vulkan = probe(ctx, "vulkaninfo.txt", mac.parse_vulkaninfo) or []
    return ctx.vulkan


_VULKAN_VENDORS = {"amd": "0x1002", "nvidia": "0x10de"}


def vulkan_gpus(ctx: Context, vendor: Vendor) -> list[GpuFacts]:
    """GPUs only `vulkaninfo` shows (no ROCm, no amdgpu sysfs): name, IDs, driver version."""
    out: list[GpuFacts] = []
    for dev in vulkaninfo_devices(ctx):
        if (dev.vendor_id or "").lower() != _VULKAN_VENDORS[vendor]:
            continue
        gpu = GpuFacts(vendor, "vulkaninfo", index=len(out))
        gpu.name = None if dev.name == "unknown" else dev.name
        gpu.pci_id = norm_pci_id(dev.vendor_id, dev.device_id)
        gpu.integrated = {"integrated": True, "discrete": False}.get(dev.device_type or "")
        gpu.driver_version = dev.driver_version
        out.append(gpu)
    if out:
        ctx.warnings.append(
            f"{vendor} GPU(s) seen only by vulkaninfo: memory sizes unknown; "
            + ("rocm-smi or amdgpu's sysfs mem_info_* files" if vendor == "amd" else "nvidia-smi")
            + " would show them"
        )
    return out


# --- Apple -----------------------------------------------------------------------------------


def apple_arch(name: str | None) -> str | None:
    m = re.search(r"\bM(\d+)(?:\s+(Pro|Max|Ultra))?\b", name or "")
    if not m:
        return None
    return "apple-m" + m[1] + (f"-{m[2].lower()}" if m[2] else "")


def apple_sources(ctx: Context, llama: list[GpuFacts]) -> list[GpuFacts]:
    metal = [g for g in llama if g.vendor == "apple"]
    chip = ctx.mac.chip or ctx.sysctl.get("machdep.cpu.brand_string")
    if not metal and not (chip and apple_arch(chip) and "Apple" in chip):
        return []
    gpu = metal[0] if metal else GpuFacts("apple", "system_profiler/sysctl", name=chip, index=0)
    gpu.name = gpu.name or chip
    gpu.arch = apple_arch(gpu.name)
    gpu.unified = gpu.integrated = True
    gpu.gpu_cores = ctx.mac.gpu_cores
    wired = ctx.sysctl.get("iogpu.wired_limit_mb")
    wired_mb = int(wired) if wired and wired.isdigit() else 0
    if wired_mb > 0:
        gpu.budget_bytes, gpu.budget_source = wired_mb * MIB, "iogpu.wired_limit_mb"
    return [gpu]


# --- settling one device ---------------------------------------------------------------------


def _product_names(pci: PciGpu) -> list[str]:
    """'Radeon RX 7900 XT/7900 XTX' -> ['Radeon RX 7900 XT', 'Radeon RX 7900 XTX']: pci.ids
    lists the products sharing a device ID with the words they share written once."""
    first, *rest = [p.strip() for p in pci.product.split("/")]
    words = first.split()
    out = [first]
    for alt in rest:
        head = alt.split()[0] if alt.split() else ""
        cut = words.index(head) if head in words else max(len(words) - len(alt.split()), 0)
        out.append(" ".join([*words[:cut], alt]))
    return out


def apply_pci(ctx: Context, gpu: GpuFacts) -> PciGpu | None:
    """Fill the name, arch and integrated flag a PCI device ID implies (pci.ids + our map)."""
    pci = lookup_pci(gpu.pci_id)
    if pci is None:
        return None
    gpu.name = gpu.name or pci.product
    gpu.arch = gpu.arch or pci.arch
    fam = family_of(ctx.table, gpu.vendor, pci.die)
    if gpu.integrated is None and fam is not None:
        gpu.integrated = fam.integrated  # the die ships in APUs only, or in cards only
    return pci


def _starts(text: str, prefixes: list[str]) -> bool:
    return any(re.match(rf"{re.escape(p)}\b", text, re.I) for p in prefixes)


def _bracketed(ctx: Context, gpu: GpuFacts) -> PciGpu | None:
    """rocm-smi prints pci.ids names ('Arcturus GL-XL [AMD Instinct MI100]'): the die names the
    arch, the brackets the products."""
    if not gpu.name or "[" not in gpu.name:
        return None
    die = gpu.name.split("[")[0].strip()
    fam = next(
        (f for f in ctx.table.gpu_families if f.vendor == gpu.vendor and _starts(die, f.chips)),
        None,
    )
    gpu.arch = gpu.arch or (fam.arch if fam else None)
    if gpu.integrated is None and fam is not None:
        gpu.integrated = fam.integrated
    return PciGpu("", gpu.name, die, gpu.arch)


def _truncated(ctx: Context, gpu: GpuFacts) -> list[ChipEntry]:
    """nvidia-smi's table cuts long names ('NVIDIA GeForce RTX 5070 ...'): the rows the name
    starts, where the memory shown narrows them."""
    if not gpu.name or not gpu.name.endswith("...") or not gpu.memory_bytes:
        return []
    from stackctl.detect.gpudb import find_prefix, spec_chip

    gib = gpu.memory_bytes / GIB
    specs = [s for s in find_prefix(gpu.name) if s.memory_gb and abs(s.memory_gb - gib) < 1]
    return [spec_chip(ctx.table, s) for s in specs]


def _tegra(ctx: Context, gpu: GpuFacts) -> list[ChipEntry]:
    """'Orin (nvgpu)': a Jetson module's iGPU; the modules share the die, and the module's
    memory (the box's RAM) tells them apart."""
    m = re.match(r"^(\w+) \(nvgpu\)$", gpu.name or "")
    if not m:
        return []
    from stackctl.detect.gpudb import load_gpu_db, spec_chip

    specs = [s for s in load_gpu_db().specs if s.embedded and m[1].lower() in s.name.lower()]
    host = (ctx.host_total or 0) / GIB
    sized = [s for s in specs if s.memory_gb and abs(s.memory_gb - host) < s.memory_gb * 0.15]
    return [spec_chip(ctx.table, s) for s in sized or specs]


def _candidates(ctx: Context, gpu: GpuFacts, pci: PciGpu | None) -> list[ChipEntry]:
    cands = match_chips(ctx.table, gpu.name, gpu=True) if gpu.name else []
    cands = cands or _tegra(ctx, gpu)
    pci = pci or _bracketed(ctx, gpu)
    if not cands and pci is not None:
        for name in _product_names(pci):
            cands += [c for c in match_chips(ctx.table, name, gpu=True) if c not in cands]
    cands = cands or _truncated(ctx, gpu)
    return cands or match_arch(ctx.table, gpu.vendor, gpu.arch)


def pick_chip(ctx: Context, gpu: GpuFacts) -> ChipEntry | None:
    pci = apply_pci(ctx, gpu)
    cands = _candidates(ctx, gpu, pci)
    if len(cands) > 1 and gpu.gpu_cores:
        cands = [c for c in cands if c.gpu_cores in {None, gpu.gpu_cores}]
    if len(cands) > 1 and gpu.memory_bytes and not gpu.unified:
        # 'RTX 3060' is a 12 GB and an 8 GB card: the memory the tool shows settles it
        sized = [
            c for c in cands if c.memory_gib and abs(c.memory_gib - gpu.memory_bytes / GIB) < 2
        ]
        cands = sized or cands
    if cands:
        return pick_variant("GPU", gpu.name or gpu.arch or "?", cands, None, ctx.warnings)
    cpu = ctx.cpu_chip
    # An APU's GPU seen only through sysfs: the CPU names the chip.
    if cpu is not None and cpu.kind == "apu" and cpu.vendor == gpu.vendor and not gpu.name:
        return cpu
    return None
