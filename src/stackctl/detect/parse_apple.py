"""Pure parsers for macOS sources (sysctl, system_profiler) and the cross-vendor ones
(llama-server --list-devices, vulkaninfo, clinfo)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args

from stackctl.detect.facts import MIB, GpuFacts, Vendor, clean, json_object, parse_size, to_int
from stackctl.models.hardware import MatrixCores, VulkanDevice


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl` lines, `key: value` or `key = value`; the set form `key: old -> new` gives new."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(?::|=)\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(2)
        if " -> " in value:
            value = value.rsplit(" -> ", 1)[1].strip()
        out.setdefault(m.group(1), value)
    return out


# sysctl hw.optional.* names -> the flag names engines and /proc/cpuinfo use.
_MAC_FEATURES = {
    "hw.optional.neon": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_FP16": "fphp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.arm.FEAT_SME2": "sme2",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.avx512f": "avx512f",
}


def sysctl_flags(kv: dict[str, str]) -> list[str]:
    flags = {flag for key, flag in _MAC_FEATURES.items() if kv.get(key) == "1"}
    if "fphp" in flags:
        flags.add("asimdhp")
    return sorted(flags)


@dataclass
class MacFacts:
    chip: str | None = None
    model_id: str | None = None
    model_name: str | None = None
    memory_bytes: int | None = None
    cores: int | None = None
    performance_cores: int | None = None
    efficiency_cores: int | None = None
    gpu_cores: int | None = None
    os_version: str | None = None
    kernel: str | None = None


def _cores(value: str, out: MacFacts) -> None:
    out.cores = to_int(value)
    m = re.search(r"(\d+)\s+performance\s+and\s+(\d+)\s+efficiency", value, re.I)
    if m:
        out.performance_cores, out.efficiency_cores = int(m[1]), int(m[2])


def parse_system_profiler(text: str) -> MacFacts:
    """`system_profiler` text, any data types and detail level."""
    out = MacFacts()
    section = ""
    for line in text.splitlines():
        key, found, value = line.strip().partition(":")
        if not found:
            continue
        key, value = key.strip(), value.strip()
        if not value and len(line) - len(line.lstrip()) == 0:
            section = key  # top-level data type: Hardware, Graphics/Displays, Software
            continue
        if section.startswith("Graphics"):
            if key == "Total Number of Cores":
                out.gpu_cores = to_int(value)
            elif key == "Chipset Model":
                out.chip = out.chip or clean(value)
            continue
        _hardware_field(out, key, value)
    return out


def _hardware_field(out: MacFacts, key: str, value: str) -> None:
    if key in {"Chip", "Processor Name"}:
        out.chip = clean(value)
    elif key == "Model Identifier":
        out.model_id = clean(value)
    elif key == "Model Name":
        out.model_name = clean(value)
    elif key == "Memory":
        out.memory_bytes = parse_size(value)
    elif key == "Total Number of Cores":
        _cores(value, out)
    elif key == "System Version":
        out.os_version = clean(value)
    elif key == "Kernel Version":
        out.kernel = clean(value.replace("Darwin", ""))


def _first(data: dict[str, Any], key: str) -> dict[str, Any]:
    items = data.get(key)
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def parse_system_profiler_json(text: str) -> MacFacts:
    out = MacFacts()
    data = json_object(text)
    if data is None:
        return out
    hw = _first(data, "SPHardwareDataType")
    out.chip = clean(str(hw.get("chip_type") or hw.get("cpu_type") or "")) or None
    out.model_id = clean(str(hw.get("machine_model", "")))
    out.model_name = clean(str(hw.get("machine_name", "")))
    out.memory_bytes = parse_size(str(hw.get("physical_memory", "")))
    # "proc 10:8:2" = total : performance : efficiency
    m = re.match(r"proc\s+(\d+):(\d+):(\d+)", str(hw.get("number_processors", "")))
    if m:
        out.cores, out.performance_cores, out.efficiency_cores = (int(g) for g in m.groups())
    gpu = _first(data, "SPDisplaysDataType")
    out.gpu_cores = to_int(str(gpu.get("sppci_cores", "")))
    sw = _first(data, "SPSoftwareDataType")
    out.os_version = clean(str(sw.get("os_version", "")))
    kernel = clean(str(sw.get("kernel_version", "")))
    out.kernel = kernel.replace("Darwin", "").strip() if kernel else None
    return out


_BACKENDS: dict[str, Vendor] = {"MTL": "apple", "CUDA": "nvidia", "ROCm": "amd", "HIP": "amd"}


def parse_llama_devices(text: str) -> list[GpuFacts]:
    """`llama-server --list-devices`: '  MTL0: Apple M1 Max (26000 MiB, 25999 MiB free)'."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z]+)(\d+):\s*(.*?)\s*\((\d+)\s*MiB,\s*(\d+)\s*MiB free\)", line)
        if not m or m[1] not in _BACKENDS:
            continue
        gpu = GpuFacts(_BACKENDS[m[1]], "llama-server --list-devices", name=m[3], index=int(m[2]))
        size = int(m[4]) * MIB
        if gpu.vendor == "apple":
            # Metal reports its working-set limit, which is the GPU wired limit.
            gpu.budget_bytes, gpu.budget_source = size, "Metal working set (llama.cpp)"
        else:
            gpu.memory_bytes = size
        out.append(gpu)
    return out


_GGML_VULKAN = re.compile(r"^ggml_vulkan:\s*(\d+)\s*=\s*(.*?)\s*\|.*matrix cores:\s*(\w+)")
MATRIX_PATHS = get_args(MatrixCores)


def parse_ggml_vulkan(text: str) -> list[tuple[str, str]]:
    """(device name, matrix path) of each `ggml_vulkan: 0 = Radeon 8060S Graphics (RADV
    GFX1151) (radv) | ... | matrix cores: KHR_coopmat` line (llama.cpp's Vulkan backend prints
    them as it starts: llama-server --list-devices), in device order."""
    out = []
    for line in text.splitlines():
        m = _GGML_VULKAN.match(line.strip())
        if m and m[3] in MATRIX_PATHS:
            out.append((m[2], m[3]))
    return out


def parse_vulkaninfo(text: str) -> list[VulkanDevice]:
    """`vulkaninfo --summary` device blocks (`GPU0:` then `key = value`)."""
    devices: list[dict[str, str]] = []
    for line in text.splitlines():
        if re.match(r"^GPU\d+:\s*$", line.strip()):
            devices.append({})
            continue
        key, found, value = line.partition("=")
        if found and not devices and key.strip() in {"apiVersion", "deviceName", "vendorID"}:
            devices.append({})  # old vulkaninfo prints the properties without a GPU0: line
        if found and devices:
            devices[-1].setdefault(key.strip(), value.strip())
    out = []
    for dev in devices:
        name = clean(dev.get("deviceName"))
        if not name:
            continue
        if re.fullmatch(r"unknown (amd|nvidia) gpu", name, re.I):
            name = "unknown"  # AMDVLK without an amdgpu.ids entry: the device ID names it
        kind = clean(dev.get("deviceType"))
        if kind:
            kind = kind.replace("PHYSICAL_DEVICE_TYPE_", "").replace("_GPU", "").lower()
        out.append(
            VulkanDevice(
                name=name,
                device_type=kind,
                vendor_id=clean(dev.get("vendorID")),
                device_id=clean(dev.get("deviceID")),
                driver_name=clean(dev.get("driverName")),
                driver_info=clean(dev.get("driverInfo")),
                driver_version=clean(dev.get("driverVersion", "").split(" ")[0]),
                api_version=clean(dev.get("apiVersion")),
            )
        )
    return out


@dataclass
class ClinfoFacts:
    platforms: int | None = None
    devices: list[str] = field(default_factory=list)


def parse_clinfo(text: str) -> ClinfoFacts:
    out = ClinfoFacts()
    m = re.search(r"Number of platforms\s+(\d+)", text)
    out.platforms = int(m.group(1)) if m else None
    out.devices = [m.group(1).strip() for m in re.finditer(r"^\s*Device Name\s+(.+)$", text, re.M)]
    return out
