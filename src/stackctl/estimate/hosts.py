"""Hardware profiles for a bare CPU host, as benchmarks and calibration rows describe one."""

from __future__ import annotations

from stackctl.models.hardware import CpuInfo, HardwareProfile, MemoryInfo, OsInfo

UNBOUNDED = 1 << 50  # memory no estimate runs out of: for speed or accounting checks


def cpu_host(
    cores: int,
    flags: list[str],
    *,
    bandwidth_gbps: float | None = None,
    memory_bytes: int = UNBOUNDED,
    name: str = "bench-host",
) -> HardwareProfile:
    """A Linux x86_64 host with `cores` cores; `bandwidth_gbps` is a measured figure."""
    return HardwareProfile(
        name=name,
        cpu=CpuInfo(
            arch="x86_64",
            cores=cores,
            threads=cores,
            flags=flags,
            bandwidth_gbps=bandwidth_gbps,
            bandwidth_source="measured in the same run" if bandwidth_gbps else None,
        ),
        memory=MemoryInfo(total_bytes=memory_bytes, available_bytes=memory_bytes),
        os=OsInfo(system="linux"),
    )
