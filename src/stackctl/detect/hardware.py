"""detect_hardware(runner) -> HardwareProfile: every probe, parsed and merged."""

from __future__ import annotations

import re

from stackctl.detect import parse_apple as mac
from stackctl.detect import parse_linux as lx
from stackctl.detect.accelerators import (
    Context,
    amd_sources,
    apple_sources,
    nvidia_sources,
    probe,
    vulkan_gpus,
    vulkaninfo_devices,
)
from stackctl.detect.bandwidth_probe import UNKNOWN_BANDWIDTH
from stackctl.detect.chips import ChipEntry, ChipTable, load_chip_table, match_chips
from stackctl.detect.facts import CpuFacts, GpuFacts, Vendor, norm_pci, to_int
from stackctl.detect.parse_psutil import PsutilFacts, parse_psutil
from stackctl.detect.pci import lookup_pci
from stackctl.detect.runner import Runner
from stackctl.detect.settle import settle
from stackctl.models.hardware import Accelerator, CpuInfo, HardwareProfile, MemoryInfo, OsInfo

_X86_NAMES = re.compile(
    r"\b(EPYC|Xeon|Ryzen|RYZEN|Threadripper|Core\(TM\)|Core i\d|Athlon|Opteron)\b"
)


def _fill(base: CpuFacts, other: CpuFacts | None) -> None:
    if other is None:
        return
    for key, value in vars(other).items():
        if getattr(base, key) in (None, []) and value not in (None, []):
            setattr(base, key, value)


def _cpu_facts(ctx: Context, uname: lx.UnameFacts | None) -> tuple[CpuFacts, str | None]:
    cpu = probe(ctx, "lscpu.txt", lx.parse_lscpu) or CpuFacts()
    parsed = probe(ctx, "/proc/cpuinfo", lx.parse_cpuinfo, file=True)
    board = parsed[1] if parsed else None
    _fill(cpu, parsed[0] if parsed else None)
    sysctl = ctx.sysctl
    if sysctl or ctx.mac.chip:
        _fill(
            cpu,
            CpuFacts(
                model=sysctl.get("machdep.cpu.brand_string") or ctx.mac.chip,
                arch=sysctl.get("hw.machine"),
                cores=to_int(sysctl.get("hw.physicalcpu"))
                or _perflevel_cores(sysctl)
                or ctx.mac.cores,
                threads=to_int(sysctl.get("hw.logicalcpu")) or to_int(sysctl.get("hw.ncpu")),
                performance_cores=to_int(sysctl.get("hw.perflevel0.physicalcpu"))
                or ctx.mac.performance_cores,
                efficiency_cores=to_int(sysctl.get("hw.perflevel1.physicalcpu"))
                or ctx.mac.efficiency_cores,
                flags=mac.sysctl_flags(sysctl),
            ),
        )
    _fill(cpu, CpuFacts(cores=ctx.psutil.cpu_physical, threads=ctx.psutil.cpu_logical))
    if uname is not None and uname.machine:
        cpu.arch = uname.machine  # the contract: what `uname -m` prints
    return cpu, board


def _perflevel_cores(sysctl: dict[str, str]) -> int | None:
    """A partial `sysctl` without hw.physicalcpu: the cores of every perflevel add up."""
    counts = [
        to_int(v) for k, v in sysctl.items() if re.fullmatch(r"hw\.perflevel\d+\.physicalcpu", k)
    ]
    return sum(c for c in counts if c) or None


def _cpu_arch(cpu: CpuFacts, chip: ChipEntry | None, accels: list[Accelerator]) -> str | None:
    if cpu.arch:
        return cpu.arch
    if chip is not None and chip.cpu_arch:
        return chip.cpu_arch
    if any(a.vendor == "apple" for a in accels):
        return "arm64"  # uname -m on Apple Silicon macOS
    if any(a.chip == "gb10" for a in accels):
        return "aarch64"
    if cpu.model and _X86_NAMES.search(cpu.model):
        return "x86_64"
    return None


def _cpu_chip(table: ChipTable, cpu: CpuFacts, board: str | None) -> ChipEntry | None:
    for name in (cpu.model, re.sub(r"\s+Rev\s+[\d.]+$", "", board or "")):
        if name:
            hits = match_chips(table, name)
            if len(hits) == 1:
                return hits[0]
    return None


def _memory(ctx: Context) -> MemoryInfo:
    total, avail = probe(ctx, "/proc/meminfo", lx.parse_meminfo, file=True) or (None, None)
    if ctx.psutil.memory_total:  # psutil first: the same call on Linux and macOS
        total, avail = ctx.psutil.memory_total, ctx.psutil.memory_available or avail
    if total is None:
        total, avail2 = probe(ctx, "free.txt", lx.parse_free) or (None, None)
        avail = avail or avail2
    total = total or to_int(ctx.sysctl.get("hw.memsize")) or ctx.mac.memory_bytes
    return MemoryInfo(total_bytes=total, available_bytes=avail)


def _os(ctx: Context, uname: lx.UnameFacts | None) -> OsInfo:
    distro = probe(ctx, "/etc/os-release", lx.parse_os_release, file=True)
    cmdline_text = ctx.runner.read_file("/proc/cmdline")
    if cmdline_text is not None and not cmdline_text.strip():
        cmdline_text = None
    if cmdline_text is not None:
        ctx.cmdline = (
            probe(ctx, "/proc/cmdline", lx.parse_cmdline, file=True, may_be_empty=True)
            or ctx.cmdline
        )
    else:  # the kernel log prints the command line at boot
        cmdline_text = lx.dmesg_cmdline(ctx.runner.run("dmesg-amdgpu.txt") or "")
        ctx.cmdline = lx.parse_cmdline(cmdline_text) if cmdline_text else ctx.cmdline
    ctx.warnings.extend(ctx.cmdline.warnings)
    system = uname.system if uname and uname.system else None
    if system is None and (ctx.sysctl or ctx.mac.chip):
        system = "darwin"
    nvcc = probe(ctx, "nvcc.txt", lx.parse_nvcc)
    return OsInfo(
        system=system or "unknown",
        kernel=(uname.kernel if uname else None)
        or ctx.mac.kernel
        or ctx.sysctl.get("kern.osrelease"),
        distro=distro or ctx.mac.os_version or _mac_version(ctx.sysctl),
        kernel_cmdline=cmdline_text.strip() if cmdline_text else None,
        ttm_pages_limit=ctx.cmdline.ttm_pages_limit,
        amdgpu_gttsize_mib=ctx.cmdline.gttsize_mib,
        cmdline_gtt_bytes=ctx.cmdline.gtt_bytes,
        cuda_toolkit_version=nvcc,
    )


def _mac_version(sysctl: dict[str, str]) -> str | None:
    version = sysctl.get("kern.osproductversion")
    return f"macOS {version}" if version else None


def _llama_devices(text: str) -> tuple[list[GpuFacts], list[tuple[str, str]]]:
    return mac.parse_llama_devices(text), mac.parse_ggml_vulkan(text)


_VULKAN_VENDOR = (("nvidia", r"nvidia|geforce|rtx|quadro|tesla"), ("intel", r"intel|arc"),
                  ("amd", r"amd|radeon|radv|ryzen"))  # fmt: skip


def matrix_paths(accels: list[Accelerator], lines: list[tuple[str, str]]) -> list[Accelerator]:
    """Each GPU's llama.cpp Vulkan matrix path from the ggml_vulkan device lines: paired in
    order where a vendor has as many lines as GPUs, else only where all its lines agree (an
    iGPU listed beside a card may differ: left unknown)."""
    by_vendor: dict[str, list[str]] = {}
    for name, shown in lines:
        vendor = next((v for v, pat in _VULKAN_VENDOR if re.search(pat, name, re.I)), None)
        if vendor:
            by_vendor.setdefault(vendor, []).append(shown)
    out = []
    seen: dict[str, int] = {}
    for acc in accels:
        paths = by_vendor.get(acc.vendor, [])
        nth = seen[acc.vendor] = seen.get(acc.vendor, -1) + 1
        if len(paths) == sum(a.vendor == acc.vendor for a in accels):
            path: str | None = paths[nth]
        else:
            path = paths[0] if paths and len(set(paths)) == 1 else None
        out.append(acc.model_copy(update={"matrix_cores": path}) if path else acc)
    return out


def _gpu_list(ctx: Context) -> tuple[list[GpuFacts], str | None, int, list[str]]:
    """All accelerators in vendor order, plus rocminfo's CPU model/threads and NPUs."""
    listed = probe(ctx, "llama-list-devices.txt", _llama_devices)
    llama, ctx.ggml_vulkan = listed or ([], [])
    nvidia = nvidia_sources(ctx)
    if not nvidia:
        nvidia = [g for g in llama if g.vendor == "nvidia"] or vulkan_gpus(ctx, "nvidia")
    amd, rocm = amd_sources(ctx)
    if not amd:
        amd = [g for g in llama if g.vendor == "amd"]
    pci_devices = probe(ctx, "lspci.txt", lx.parse_lspci) or []
    nvidia = nvidia or lspci_gpus(ctx, pci_devices, "nvidia")
    amd = amd or lspci_gpus(ctx, pci_devices, "amd")
    apple = apple_sources(ctx, llama)
    cpu_model = rocm.cpu_model if rocm else None
    threads = rocm.cpu_threads if rocm else None
    npus = rocm.npus if rocm else []
    return [*nvidia, *amd, *apple], cpu_model, threads or 0, npus


def _context(runner: Runner, table: ChipTable | None) -> Context:
    ctx = Context(runner=runner, table=table or load_chip_table())
    ctx.sysctl = probe(ctx, "sysctl.txt", mac.parse_sysctl) or {}
    ctx.psutil = probe(ctx, "psutil.txt", parse_psutil) or PsutilFacts()
    # Both forms are read (each unreadable one is reported); the JSON wins where it says more.
    as_json = probe(ctx, "system_profiler.json", mac.parse_system_profiler_json)
    as_text = probe(ctx, "system_profiler.txt", mac.parse_system_profiler)
    ctx.mac = next((m for m in (as_json, as_text) if m and m.chip), None) or (
        as_json or as_text or mac.MacFacts()
    )
    return ctx


def detect_hardware(runner: Runner, *, table: ChipTable | None = None) -> HardwareProfile:
    """Probe through `runner` (live machine or bundle) and merge into one profile."""
    ctx = _context(runner, table)
    uname = probe(ctx, "uname.txt", lx.parse_uname)
    os_info = _os(ctx, uname)
    cpu, board = _cpu_facts(ctx, uname)
    memory = _memory(ctx)
    ctx.host_total = memory.total_bytes
    gpus, rocm_cpu, rocm_threads, npus = _gpu_list(ctx)
    cpu.model = cpu.model or rocm_cpu
    cpu.threads = cpu.threads or rocm_threads or None
    ctx.cpu_chip = _cpu_chip(ctx.table, cpu, board or ctx.mac.model_id)
    accels = matrix_paths([settle(ctx, gpu, pos) for pos, gpu in enumerate(gpus)],
                          ctx.ggml_vulkan)  # fmt: skip
    if npus:
        ctx.warnings.append(f"NPU agent(s) {', '.join(npus)} found; not counted as accelerators")
    cpu_info = _cpu_info(ctx, cpu, accels)
    vulkan = vulkaninfo_devices(ctx)
    _clinfo_check(ctx, accels)
    name = runner.label or (uname.hostname if uname else None) or "localhost"
    return HardwareProfile(
        name=name,
        source=runner.source,
        cpu=cpu_info,
        memory=memory,
        accelerators=accels,
        os=os_info.model_copy(
            update={"hsa_runtime_version": _hsa(ctx), "system": _system(ctx, os_info)}
        ),
        system_model=board or ctx.mac.model_id,
        vulkan_devices=vulkan,
        defaults=ctx.defaults,
        warnings=list(dict.fromkeys(ctx.warnings)),
    )


_LINUX_MARKS = (
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/cmdline",
    "cmd/lscpu.txt",
    "cmd/rocminfo.txt",
    "cmd/rocm-smi.txt",
    "cmd/free.txt",
    "cmd/dmesg-amdgpu.txt",
)


def _system(ctx: Context, os_info: OsInfo) -> str:
    """linux/darwin; Linux-only sources settle it when uname is absent."""
    if os_info.system == "unknown" and any(m in ctx.seen for m in _LINUX_MARKS):
        return "linux"
    return os_info.system


def _hsa(ctx: Context) -> str | None:
    text = ctx.seen.get("cmd/rocminfo.txt")
    if not text:
        return None
    m = re.search(r"^Runtime Version:\s*(\S+)", text, re.M)
    return m.group(1) if m else None


def _cpu_info(ctx: Context, cpu: CpuFacts, accels: list[Accelerator]) -> CpuInfo:
    chip = ctx.cpu_chip
    if chip is None and len(accels) == 1 and accels[0].vendor == "apple" and accels[0].chip:
        chip = ctx.table.by_id(accels[0].chip)  # the SoC is the CPU too
    arch = _cpu_arch(cpu, chip, accels)
    if arch is None:
        ctx.warnings.append("CPU architecture not shown by any source")
    if chip is None and cpu.model:
        ctx.warnings.append(
            f"CPU '{cpu.model}' is not in catalog/hardware.yaml: {UNKNOWN_BANDWIDTH}"
        )
    bw = chip.bandwidth_gbps if chip else None
    return CpuInfo(
        model=cpu.model,
        arch=arch or "unknown",
        sockets=cpu.sockets,
        cores=cpu.cores,
        threads=cpu.threads,
        flags=cpu.flags,
        bandwidth_gbps=bw,
        bandwidth_source=_cpu_bw_source(chip, cpu.sockets),
        vendor=cpu.vendor,
        performance_cores=cpu.performance_cores,
        efficiency_cores=cpu.efficiency_cores,
        chip=chip.id if chip else None,
        core=chip.cpu_core if chip else None,
    )


def _clinfo_check(ctx: Context, accels: list[Accelerator]) -> None:
    opencl = probe(ctx, "clinfo.txt", mac.parse_clinfo, may_be_empty=True)
    if opencl is not None and opencl.devices and not accels:
        ctx.warnings.append(
            f"clinfo lists {', '.join(opencl.devices)} but no vendor tool output describes "
            "them; OpenCL alone gives no memory size"
        )


_PCI_VENDORS = {"nvidia": "10de", "amd": "1002"}


def lspci_gpus(ctx: Context, devices: list[lx.PciDevice], vendor: Vendor) -> list[GpuFacts]:
    """A GPU only lspci sees (no driver tool answered) is still reported, named by its ID (or
    by lspci's own name where the ID table lacks it)."""
    out: list[GpuFacts] = []
    for dev in devices:
        if dev.vendor_id != _PCI_VENDORS.get(vendor):
            continue
        pci_id = f"{dev.vendor_id}:{dev.device_id}"
        ctx.warnings.append(
            f"lspci shows {dev.description} at {dev.slot} but no {vendor} tool output "
            "describes it (driver missing?); reported from its PCI ID alone, memory unknown"
        )
        out.append(
            GpuFacts(
                vendor,
                "lspci",
                index=len(out),
                name=None if lookup_pci(pci_id) else _lspci_name(dev.description),
                pci_bus_id=norm_pci(dev.slot),
                pci_id=pci_id,
            )
        )
    return out


def _lspci_name(description: str) -> str | None:
    """'Advanced Micro Devices, Inc. [AMD/ATI] Strix Halo [Radeon ...]' -> 'Strix Halo [...]'."""
    name = re.sub(
        r"^(Advanced Micro Devices, Inc\. \[AMD/ATI\]|NVIDIA Corporation)\s*", "", description
    )
    return name.strip() or None


def _cpu_bw_source(chip: ChipEntry | None, sockets: int | None) -> str | None:
    if chip is None or chip.bandwidth_gbps is None:
        return None
    per = f" (per socket; {sockets} sockets)" if sockets and sockets > 1 else ""
    return f"catalog/hardware.yaml {chip.id}: {chip.bandwidth_source}{per}"
