"""The hardware options every planning command shares: a profile file, declared names, or the
live machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackctl.detect.declare import declare_hardware
from stackctl.errors import HardwareError
from stackctl.models.hardware import HardwareProfile
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


def load_profile(path: Path) -> HardwareProfile:
    """A profile file; problems name the file and line."""
    data = read_yaml(path, error=HardwareError)
    return validate_yaml(HardwareProfile, data, path, error=HardwareError)


def hardware_from_args(args: argparse.Namespace) -> HardwareProfile:
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
