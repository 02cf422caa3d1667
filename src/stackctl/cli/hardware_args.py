"""The hardware options every planning command shares: a profile file, declared names, or the
live machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackctl.detect.declare import declare_hardware
from stackctl.errors import HardwareError
from stackctl.models.hardware import HardwareProfile, pcie_link
from stackctl.yamlio import read_yaml, validate_yaml


def add_hardware_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hardware", "the box to plan for (default: detect this machine)"
    )
    group.add_argument(
        "--hardware", metavar="FILE", type=Path, help="a HardwareProfile YAML (stackctl detect -o)"
    )
    group.add_argument(
        "--gpu", metavar="NAME", action="append", default=[], help="a GPU by name (repeatable)"
    )
    group.add_argument("--gpu-count", metavar="N", type=int, help="how many of the --gpu")
    group.add_argument("--cpu", metavar="NAME", help="a CPU by name")
    group.add_argument("--ram", metavar="GiB", type=float, help="system memory in GiB")
    group.add_argument(
        "--system", metavar="NAME", help='a known system, e.g. "Strix Halo 128GB", "DGX Spark"'
    )
    group.add_argument(
        "--host-link",
        metavar="LINK",
        help='the slot the GPUs sit in, e.g. "PCIe 3.0 x4" (a chipset slot, a riser): MoE '
        "offload prefill copies experts over it (default: what the card trained at, else its "
        "own interface)",
    )


def load_profile(path: Path) -> HardwareProfile:
    """A profile file; problems name the file and line."""
    data = read_yaml(path, error=HardwareError)
    return validate_yaml(HardwareProfile, data, path, error=HardwareError)


def hardware_from_args(args: argparse.Namespace) -> HardwareProfile:
    profile = _hardware(args)
    link = getattr(args, "host_link", None)
    return profile if link is None else with_host_link(profile, link)


def with_host_link(profile: HardwareProfile, link: str) -> HardwareProfile:
    """Every discrete GPU of `profile` in a slot of `link` (an iGPU has no host link)."""
    if pcie_link(link) is None:
        raise HardwareError(
            f"--host-link {link!r} is not a PCIe link",
            hint='write it as the GPU database does, e.g. "PCIe 4.0 x8" or "PCIe 3.0 x4"',
        )
    update = {"host_link": link, "host_link_source": "--host-link"}
    accelerators = [
        a if a.integrated or a.unified else a.model_copy(update=update)
        for a in profile.accelerators
    ]
    if accelerators == profile.accelerators:
        raise HardwareError("--host-link: the box has no discrete GPU to put in that slot")
    return profile.model_copy(update={"accelerators": accelerators})


def _hardware(args: argparse.Namespace) -> HardwareProfile:
    declared = bool(args.gpu or args.cpu or args.system or args.ram is not None)
    if args.hardware is not None:
        if declared or args.gpu_count is not None:
            raise HardwareError("--hardware FILE cannot be combined with declared names")
        return load_profile(args.hardware)
    if declared or args.gpu_count is not None:
        return declare_hardware(
            gpus=list(args.gpu),
            gpu_count=args.gpu_count,
            cpu=args.cpu,
            ram_gib=args.ram,
            system=args.system,
        )
    # the live probes (and ctypes for the bandwidth probe) only when this box is the target
    from stackctl.detect import bandwidth_probe as bw
    from stackctl.detect.hardware import detect_hardware
    from stackctl.detect.runner import LiveRunner

    live = detect_hardware(LiveRunner())
    return bw.with_bandwidth(live, bw.cached_or_measured(live))  # this box's measured figure
