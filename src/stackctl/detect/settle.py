"""Turn merged facts about one device into an `Accelerator`: the memory an engine can really
place on it, and the chip-table figures, each with where it came from."""

from __future__ import annotations

from stackctl.detect.accelerators import Context, pick_chip
from stackctl.detect.chips import ASSUMED_SHARE, ChipEntry, wired_share
from stackctl.detect.facts import GpuFacts
from stackctl.models.hardware import Accelerator


def _label(gpu: GpuFacts, pos: int) -> str:
    where = gpu.pci_bus_id or next((n for n in gpu.notes if n.startswith("sysfs ")), None)
    return f"GPU {pos}" + (f" ({where})" if where else "")


def _nvidia_budget(ctx: Context, gpu: GpuFacts, chip: ChipEntry | None, pos: int) -> None:
    if chip is not None and chip.unified:
        gpu.unified = gpu.integrated = True
        # No dedicated framebuffer (DGX Spark: "Not Supported"); memory is the host's.
        gpu.memory_bytes = gpu.memory_bytes or ctx.host_total
        if gpu.memory_bytes is None:
            ctx.warnings.append(
                f"{_label(gpu, pos)} shares system memory, and system memory is not known here"
            )
        gpu.budget_bytes, gpu.budget_source = gpu.memory_bytes, "system memory (unified)"
        return
    gpu.unified = False
    if gpu.mig_enabled:
        if gpu.mig_instance_bytes:
            gpu.budget_bytes, gpu.budget_source = gpu.mig_instance_bytes, "one MIG instance"
        else:
            ctx.warnings.append(
                f"{_label(gpu, pos)} has MIG enabled but no instance sizes are shown; "
                "memory budget unknown"
            )
        return
    gpu.budget_bytes, gpu.budget_source = gpu.memory_bytes, "VRAM" if gpu.memory_bytes else None


def _amd_budget(ctx: Context, gpu: GpuFacts, chip: ChipEntry | None, pos: int) -> None:
    if gpu.integrated is None and chip is not None:
        gpu.integrated = chip.integrated
    gtt_cmd = ctx.cmdline.gtt_bytes
    if gpu.gtt_bytes and gtt_cmd and abs(gpu.gtt_bytes - gtt_cmd) > gtt_cmd // 100:
        ctx.warnings.append(
            f"{_label(gpu, pos)}: mem_info_gtt_total is {gpu.gtt_bytes} bytes but the kernel "
            f"command line asks for {gtt_cmd}; the kernel may cap GTT (e.g. to physical RAM)"
        )
    if gpu.integrated is None and gpu.gtt_bytes and gpu.gtt_bytes == gpu.carveout_bytes:
        # Old/proprietary amdgpu on a discrete card reports the VRAM size as GTT as well.
        gpu.integrated = False
        ctx.warnings.append(
            f"AMD {_label(gpu, pos)}: mem_info_gtt_total equals mem_info_vram_total "
            f"({gpu.gtt_bytes} bytes), as an old amdgpu reports on a discrete card; taken as a "
            "discrete card whose budget is its VRAM"
        )
    if gpu.integrated:
        _apu_budget(ctx, gpu, pos)
        return
    gpu.unified = False
    if gpu.integrated is None:
        gpu.budget_bytes = gpu.budget_source = None
        ctx.warnings.append(
            f"cannot tell whether AMD {_label(gpu, pos)} is integrated or discrete; memory "
            "budget not set (an APU uses its GTT pool, a discrete card its VRAM)"
        )
        return
    gpu.memory_bytes = gpu.memory_bytes or gpu.carveout_bytes
    gpu.budget_bytes = gpu.memory_bytes
    gpu.budget_source = "VRAM" if gpu.memory_bytes else None


def _apu_budget(ctx: Context, gpu: GpuFacts, pos: int) -> None:
    gpu.unified = True
    gpu.memory_bytes = ctx.host_total
    gtt_cmd = ctx.cmdline.gtt_bytes
    if gpu.gtt_bytes:
        gpu.budget_bytes, gpu.budget_source = gpu.gtt_bytes, "mem_info_gtt_total"
    elif gpu.budget_bytes is None and gtt_cmd:
        gpu.budget_bytes, gpu.budget_source = gtt_cmd, "kernel command line GTT size"
    elif gpu.budget_bytes is None and ctx.host_total:
        # Without gttsize, GTT = the TTM page limit, by default half of RAM (engines.md 4.3).
        gpu.budget_bytes = ctx.host_total // 2
        gpu.budget_source = "kernel default GTT (half of RAM)"
        ctx.defaults.append(f"accelerators.{pos}.memory_budget_bytes")
        ctx.warnings.append(
            f"{_label(gpu, pos)}: GTT pool not shown; assumed the kernel's default, half of RAM "
            "(mem_info_gtt_total in sysfs would show the real pool)"
        )
    if gpu.budget_bytes is None:
        ctx.warnings.append(f"{_label(gpu, pos)} is integrated but its GTT pool is not shown")


def _apple_budget(ctx: Context, gpu: GpuFacts, pos: int) -> None:
    gpu.memory_bytes = gpu.memory_bytes or ctx.host_total
    if gpu.budget_bytes is not None:
        return
    if gpu.memory_bytes is None:
        ctx.warnings.append("unified memory size not shown; GPU memory budget unknown")
        return
    found = wired_share(ctx.table, gpu.memory_bytes)
    if found is None:
        ctx.warnings.append(
            "GPU wired limit not shown and macOS's default share for this RAM size is not in "
            "catalog/hardware.yaml; memory budget unknown"
        )
        return
    rule, assumed = found
    gpu.budget_bytes = int(gpu.memory_bytes * rule.share)
    gpu.budget_source = f"macOS default wired limit ({rule.share:.0%} of RAM)"
    ctx.defaults.append(f"accelerators.{pos}.memory_budget_bytes")
    ctx.warnings.append(
        f"GPU wired limit not shown: assumed macOS's default {rule.share:.0%} of RAM "
        f"({rule.source}){ASSUMED_SHARE if assumed else ''}; raise it with "
        "`sudo sysctl iogpu.wired_limit_mb=N`"
    )


def settle(ctx: Context, gpu: GpuFacts, pos: int) -> Accelerator:
    chip = pick_chip(ctx, gpu)
    if chip is None:
        ctx.warnings.append(
            f"{gpu.vendor} {_label(gpu, pos)} '{gpu.name or gpu.arch or 'unnamed'}' is not in "
            "catalog/hardware.yaml: bandwidth and peak compute unknown"
        )
    else:
        gpu.arch = gpu.arch or chip.arch
        if gpu.vendor == "apple" or not gpu.name:
            gpu.name = gpu.name or chip.name
    if gpu.vendor == "nvidia":
        _nvidia_budget(ctx, gpu, chip, pos)
    elif gpu.vendor == "amd":
        _amd_budget(ctx, gpu, chip, pos)
    else:
        _apple_budget(ctx, gpu, pos)
    ctx.warnings.extend(
        n for n in gpu.notes if not n.startswith("sysfs ") and n not in ctx.warnings
    )
    link, link_source = _host_link(gpu, chip)
    clock_mhz, clock_source = chip.gpu_clock if chip else (None, None)
    return Accelerator(
        vendor=gpu.vendor,
        name=gpu.name or f"unknown {gpu.vendor.upper()} GPU",
        arch=gpu.arch,
        memory_bytes=gpu.memory_bytes,
        unified=bool(gpu.unified),
        memory_budget_bytes=gpu.budget_bytes,
        gtt_bytes=gpu.gtt_bytes,
        carveout_bytes=gpu.carveout_bytes,
        driver_version=gpu.driver_version,
        runtime_version=gpu.runtime_version,
        pci_bus_id=gpu.pci_bus_id,
        bandwidth_gbps=chip.bandwidth_gbps if chip else None,
        bandwidth_source=_bw_source(chip),
        index=gpu.index,
        uuid=gpu.uuid,
        compute_capability=gpu.compute_capability,
        integrated=gpu.integrated,
        mig_enabled=gpu.mig_enabled,
        mig_instances=gpu.mig_instances,
        gpu_cores=gpu.gpu_cores,
        compute_units=gpu.compute_units,
        budget_source=gpu.budget_source if gpu.budget_bytes is not None else None,
        peak_tflops_fp16=chip.peak_tflops_fp16 if chip else None,
        peak_tops_int8=chip.peak_tops_int8 if chip else None,
        peak_source=chip.peak_source if chip else None,
        clock_mhz=clock_mhz,
        clock_source=clock_source,
        chip=chip.id if chip else None,
        host_link=link,
        host_link_source=link_source,
    )


def _host_link(gpu: GpuFacts, chip: ChipEntry | None) -> tuple[str | None, str | None]:
    """(link, source): the link the GPU trained at where a probe read it, else the card's own
    interface."""
    if gpu.host_link:
        return gpu.host_link, "the link it trained at (nvidia-smi -q -x: max link gen and width)"
    if chip is None:
        return None, None
    return chip.host_link, chip.host_link_source


def _bw_source(chip: ChipEntry | None) -> str | None:
    if chip is None or chip.bandwidth_gbps is None:
        return None
    return f"catalog/hardware.yaml {chip.id}: {chip.bandwidth_source}"
