"""HardwareProfile: what a box is, detected live, replayed from a bundle, or declared by hand."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel

# A GPU's host link as the GPU database names a card's interface: PCIe generation and lanes
PCIE_LINK = r"^PCIe ([1-6])\.0 x(1|2|4|8|16)$"


def pcie_link(text: str | None) -> str | None:
    """`text` where it names a PCIe link as PCIE_LINK reads it (not an IGP, MXM, a ring bus, or
    a width no slot has), else None."""
    return text if text and re.match(PCIE_LINK, text) else None


Vendor = Literal["nvidia", "amd", "apple", "intel", "mesa"]  # mesa: a software device (lavapipe)
ProfileSource = Literal["detected", "bundle", "declared"]
MatrixCores = Literal["KHR_coopmat", "NV_coopmat2", "none"]  # llama.cpp Vulkan's matrix path


class CpuInfo(StrictModel):
    model: str | None = Field(None, description="CPU model name as the OS reports it")
    arch: str = Field(description="what `uname -m` prints: x86_64, aarch64, arm64")
    sockets: int | None = Field(None, ge=1)
    cores: int | None = Field(None, ge=1, description="physical cores, all sockets")
    threads: int | None = Field(None, ge=1, description="logical CPUs, all sockets")
    flags: list[str] = Field(default_factory=list, description="ISA flags that matter to engines")
    bandwidth_gbps: float | None = Field(None, description="memory bandwidth from the chip table")
    bandwidth_low_gbps: float | None = Field(
        None, description="low end of the range around bandwidth_gbps when it is a typical figure"
    )
    bandwidth_high_gbps: float | None = Field(
        None,
        description="high end of the range around bandwidth_gbps when it is a typical figure, "
        "or the most a bandwidth probe that ran beside other load could have read alone",
    )
    bandwidth_source: str | None = Field(None, description="where bandwidth_gbps comes from")
    vendor: str | None = Field(None, description="GenuineIntel, AuthenticAMD, Apple, ARM (0x41)")
    performance_cores: int | None = Field(None, ge=0, description="Apple/hybrid P-cores")
    efficiency_cores: int | None = Field(None, ge=0, description="Apple/hybrid E-cores")
    chip: str | None = Field(None, description="id of the matching chip in catalog/hardware.yaml")
    core: str | None = Field(
        None, description="core design (catalog/hardware.yaml cpu_cores), from the chip table"
    )


class MemoryInfo(StrictModel):
    total_bytes: int | None = Field(None, ge=0)
    available_bytes: int | None = Field(None, ge=0)


class Accelerator(StrictModel):
    vendor: Vendor
    name: str
    arch: str | None = Field(None, description="sm_86, gfx1151, apple-m3-max")
    memory_bytes: int | None = Field(None, ge=0, description="device memory (VRAM or shared)")
    unified: bool = Field(False, description="shares memory with the CPU")
    memory_budget_bytes: int | None = Field(
        None, ge=0, description="what an engine can really place on the device"
    )
    gtt_bytes: int | None = Field(None, ge=0)
    carveout_bytes: int | None = Field(None, ge=0)
    driver_version: str | None = None
    runtime_version: str | None = None
    pci_bus_id: str | None = None
    bandwidth_gbps: float | None = None
    bandwidth_source: str | None = None
    index: int | None = Field(None, ge=0, description="device index as the vendor tool numbers it")
    uuid: str | None = None
    compute_capability: str | None = Field(None, description="NVIDIA major.minor, e.g. 8.9")
    integrated: bool | None = Field(None, description="an APU/iGPU; None when not known")
    mig_enabled: bool | None = Field(None, description="NVIDIA MIG mode (current)")
    mig_instances: int | None = Field(None, ge=0, description="MIG instances on this GPU")
    gpu_cores: int | None = Field(None, ge=0, description="Apple GPU cores")
    compute_units: int | None = Field(None, ge=0, description="AMD CUs / NVIDIA SMs when shown")
    budget_source: str | None = Field(
        None, description="what memory_budget_bytes was read from (e.g. mem_info_gtt_total)"
    )
    peak_tflops_fp16: float | None = Field(None, description="dense fp16 peak from the chip table")
    peak_tops_int8: float | None = Field(
        None, description="dense int8 matrix peak from the chip table (None: not known)"
    )
    peak_source: str | None = None
    clock_mhz: float | None = Field(
        None, description="boost clock from the chip table or GPU database (None: not known)"
    )
    clock_source: str | None = None
    chip: str | None = Field(None, description="id of the matching chip in catalog/hardware.yaml")
    matrix_cores: MatrixCores | None = Field(
        None,
        description="llama.cpp Vulkan's matrix path on this device (its ggml_vulkan line): "
        "KHR_coopmat, NV_coopmat2 or none; None when not known",
    )
    host_link: str | None = Field(
        None,
        pattern=PCIE_LINK,
        description="its link to the host, e.g. 'PCIe 4.0 x8'; None when not known",
    )
    host_link_source: str | None = None


class VulkanDevice(StrictModel):
    name: str
    device_type: str | None = Field(None, description="integrated, discrete, cpu, virtual")
    vendor_id: str | None = None
    device_id: str | None = None
    driver_name: str | None = None
    driver_info: str | None = None
    driver_version: str | None = None
    api_version: str | None = None


class OsInfo(StrictModel):
    system: str = Field(description="linux or darwin")
    kernel: str | None = None
    distro: str | None = None
    kernel_cmdline: str | None = None
    ttm_pages_limit: int | None = Field(None, ge=0, description="ttm.pages_limit (4 KiB pages)")
    amdgpu_gttsize_mib: int | None = Field(None, description="amdgpu.gttsize (MiB, deprecated)")
    cmdline_gtt_bytes: int | None = Field(
        None, ge=0, description="GTT size the kernel command line asks for"
    )
    cuda_toolkit_version: str | None = Field(None, description="nvcc -V release")
    hsa_runtime_version: str | None = Field(None, description="rocminfo Runtime Version")


class HardwareProfile(StrictModel):
    """The stage contract `detect` produces and `resolve` consumes."""

    schema_version: Literal[1] = 1
    name: str = Field(description="profile name: the hostname when detected; names lockfiles")
    source: ProfileSource = "declared"
    cpu: CpuInfo
    memory: MemoryInfo
    accelerators: list[Accelerator] = Field(default_factory=list)
    os: OsInfo
    system_model: str | None = Field(
        None, description="board or system model: MacBookPro18,1, Raspberry Pi 5 Model B"
    )
    vulkan_devices: list[VulkanDevice] = Field(default_factory=list)
    defaults: list[str] = Field(
        default_factory=list,
        description="dotted paths of values that are documented defaults, not read from the box",
    )
    warnings: list[str] = Field(default_factory=list)
