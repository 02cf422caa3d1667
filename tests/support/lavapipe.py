"""A profile of this box with Mesa's software Vulkan device (lavapipe) as its accelerator.

`stackctl detect` lists lavapipe under vulkan_devices (device_type cpu) and, rightly, never as an
accelerator: no real stack should plan for it. The Vulkan end-to-end test does, on purpose: the
device is the detected one, its memory is the box's RAM and its bandwidth the CPU's (it runs on
the CPU).
"""

from __future__ import annotations

from stackctl.models.hardware import Accelerator, HardwareProfile


def software_vulkan_profile(detected: HardwareProfile) -> HardwareProfile:
    devices = [d for d in detected.vulkan_devices if d.device_type == "cpu"]
    if not devices:
        raise LookupError("no software Vulkan device (install mesa-vulkan-drivers)")
    device = devices[0]
    lavapipe = Accelerator(
        vendor="mesa",
        name=device.name,
        memory_bytes=detected.memory.total_bytes,
        unified=True,
        integrated=True,
        driver_version=device.driver_info,
        runtime_version=device.api_version,
        bandwidth_gbps=detected.cpu.bandwidth_gbps,
        bandwidth_source=detected.cpu.bandwidth_source,
        index=0,
    )
    return detected.model_copy(
        update={"name": f"{detected.name}-lavapipe", "accelerators": [lavapipe]}
    )
