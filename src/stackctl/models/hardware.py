"""HardwareProfile: what a box is, detected live, replayed from a bundle, or declared by hand."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel

Vendor = Literal["nvidia", "amd", "apple", "intel"]
ProfileSource = Literal["detected", "bundle", "declared"]


class CpuInfo(StrictModel):
    model: str | None = Field(None, description="CPU model name as the OS reports it")
    arch: str = Field(description="what `uname -m` prints: x86_64, aarch64, arm64")
    sockets: int | None = Field(None, ge=1)
    cores: int | None = Field(None, ge=1, description="physical cores, all sockets")
    threads: int | None = Field(None, ge=1, description="logical CPUs, all sockets")
    flags: list[str] = Field(default_factory=list, description="ISA flags that matter to engines")
    bandwidth_gbps: float | None = Field(None, description="memory bandwidth from the chip table")
    bandwidth_source: str | None = Field(None, description="where bandwidth_gbps comes from")


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


class OsInfo(StrictModel):
    system: str = Field(description="linux or darwin")
    kernel: str | None = None
    distro: str | None = None
    kernel_cmdline: str | None = None


class HardwareProfile(StrictModel):
    """The stage contract `detect` produces and `resolve` consumes."""

    schema_version: Literal[1] = 1
    name: str = Field(description="profile name: the hostname when detected; names lockfiles")
    source: ProfileSource = "declared"
    cpu: CpuInfo
    memory: MemoryInfo
    accelerators: list[Accelerator] = Field(default_factory=list)
    os: OsInfo
    defaults: list[str] = Field(
        default_factory=list,
        description="dotted paths of values that are documented defaults, not read from the box",
    )
    warnings: list[str] = Field(default_factory=list)
