"""The link a GPU's offloaded experts cross in prefill: PCIe generation x lanes, per direction.

llama.cpp copies the experts it keeps in system RAM to the GPU every ubatch of 32 tokens or
more (op offload), so that copy runs at the GPU's host link. A card's own interface comes from
the GPU database (TechPowerUp's "Bus Interface": an Arc B580 or an RTX 4060 is "PCIe 4.0 x8",
half the lanes of an RTX 4090's "PCIe 4.0 x16"); a box may declare a narrower slot. Where
neither is known, the link is taken as PCIe 4.0 x16, and the basis says so.
"""

from __future__ import annotations

import re

from stackctl.models.hardware import PCIE_LINK, Accelerator

# GB/s per lane and direction after line coding (PCI-SIG, PCI Express Base Specification
# revisions 1.0-6.0): 2.5 and 5 GT/s with 8b/10b; 8, 16 and 32 GT/s with 128b/130b; 64 GT/s
# PAM4 with 242/256-byte FLITs. PCIe 4.0 x16: 31.5 GB/s, 5.0 x16: 63.0.
LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
ASSUMED_LINK = "PCIe 4.0 x16"
_PCIE = re.compile(PCIE_LINK)


def link_gbps(interface: str | None) -> float | None:
    """Per-direction GB/s of an interface the GPU database names ("PCIe 4.0 x8"); None for
    anything else (an IGP, MXM, a ring bus)."""
    found = _PCIE.match((interface or "").strip())
    if found is None:
        return None
    return round(LANE_GBPS[int(found.group(1))] * int(found.group(2)), 2)


def gpu_link(acc: Accelerator) -> tuple[float, str]:
    """(GB/s per direction, where it comes from) of a GPU's host link, never unknown."""
    rate = link_gbps(acc.host_link)
    if rate is not None:
        return rate, f"{acc.host_link} ({acc.host_link_source or 'as the profile states'})"
    assumed = link_gbps(ASSUMED_LINK)
    assert assumed is not None
    return assumed, f"{ASSUMED_LINK} assumed (the GPU's host interface is not known)"
