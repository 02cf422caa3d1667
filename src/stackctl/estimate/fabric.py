"""A chiplet CPU's die-to-IO links: how fast its cores can read DRAM, and a staging copy write.

On AMD's chiplet CPUs every core reaches memory over its core die's (CCD's) Infinity Fabric link
to the IO die, which carries a fixed number of bytes per fabric clock in each direction
(catalog/hardware.yaml `cpu_cores`: 32 read and 16 written per cycle, at the platform's default
fabric clock). A desktop part with one CCD therefore reads less than its two DDR5 channels
deliver; the memory's own figure is not what decode on its cores streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stackctl.detect.chips import CpuCore


@dataclass(frozen=True)
class FabricCap:
    read_gbps: float
    write_gbps: float
    note: str


def fabric_cap(cores: int | None, threads: int, core: CpuCore | None) -> FabricCap | None:
    """The links' read and write GB/s for `threads` threads on a CPU of `cores` cores of design
    `core`, or None where the design's table entry gives no fabric figures."""
    if core is None or not cores or core.fabric_clock_mhz is None or not core.cores_per_ccd:
        return None
    ccds = math.ceil(cores / core.cores_per_ccd)
    # Linux spreads a few busy threads over the CCDs (each its own L3 scheduling domain)
    used = min(ccds, max(threads, 1))
    ghz = core.fabric_clock_mhz / 1000
    read = used * (core.fabric_read_bytes or 0) * ghz
    write = used * (core.fabric_write_bytes or 0) * ghz
    note = (
        f"{used} CCD link{'s' * (used != 1)} x {core.fabric_read_bytes} B read per cycle at "
        f"{core.fabric_clock_mhz:g} MHz fabric clock = {read:.1f} GB/s "
        f"(catalog/hardware.yaml cpu_cores: {core.fabric_source})"
    )
    return FabricCap(read, write, note)
