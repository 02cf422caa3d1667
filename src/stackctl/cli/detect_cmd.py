"""`stackctl detect`: probe this machine (or replay a bundle) and print the hardware profile."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from stackctl.cli.output import info, print_json
from stackctl.detect import BundleRunner, LiveRunner, collect_bundle, detect_hardware
from stackctl.detect import bandwidth_probe as bw
from stackctl.detect.runner import Runner
from stackctl.errors import EXIT_OK, InputError
from stackctl.models.hardware import HardwareProfile
from stackctl.yamlio import dump_yaml

_HEADER = "# HardwareProfile written by `stackctl detect`; usable with --hardware FILE.\n"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "detect",
        help="detect this machine's hardware (or replay a bundle)",
        description="Probe CPU, memory and accelerators and print a hardware profile.",
    )
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")
    parser.add_argument("-o", "--output", metavar="FILE", type=Path, help="write profile YAML")
    parser.add_argument(
        "--from", dest="bundle", metavar="DIR", type=Path, help="detect from a hardware bundle"
    )
    parser.add_argument(
        "--collect", metavar="DIR", type=Path, help="also write the raw probe outputs as a bundle"
    )
    probe = parser.add_mutually_exclusive_group()
    probe.add_argument(
        "--no-probe",
        action="store_true",
        help="skip the ~1 s memory-bandwidth probe (replays of bundles never probe)",
    )
    probe.add_argument(
        "--reprobe",
        action="store_true",
        help="measure the memory bandwidth again and replace this box's cached figure "
        "(after one taken on a busy box)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    runner: Runner = BundleRunner(args.bundle) if args.bundle else LiveRunner()
    if args.collect is not None:
        profile, files = collect_bundle(runner, args.collect)
        profile, record = _bandwidth(profile, args)
        if record is not None:
            files.append(bw.write_bundle_probe(args.collect, record))
        info(f"wrote bundle {args.collect} ({len(files)} files)")
    else:
        profile, _ = _bandwidth(detect_hardware(runner), args)
    if args.output is not None:
        write_profile(profile, args.output)
        info(f"wrote {args.output}")
    if args.json:
        print_json(profile)
    else:
        sys.stdout.write(summary(profile))
    return EXIT_OK


def _bandwidth(
    profile: HardwareProfile, args: argparse.Namespace
) -> tuple[HardwareProfile, dict[str, Any] | None]:
    """A bundle's recorded probe, else (live, unless --no-probe) this box's measured figure:
    the cached one unless --reprobe."""
    if args.bundle is not None:
        record = bw.read_bundle_probe(args.bundle)
    elif args.no_probe:
        record = None
    else:
        record = None if args.reprobe else bw.cached(profile)
        if record is None:  # said only when it measures: a cached figure takes no time
            info("measuring memory bandwidth (~1 s; --no-probe skips)")
            record = bw.measured(profile)
    return bw.with_bandwidth(profile, record), record


def write_profile(profile: HardwareProfile, path: Path) -> None:
    """Atomic: a temp file in the same folder, renamed over the target."""
    text = dump_yaml(profile.model_dump(mode="json"), header=_HEADER)
    folder = path.parent if str(path.parent) else Path()
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {exc}") from None


def _gib(value: int | None) -> str:
    return f"{value / 1024**3:.1f} GiB" if value is not None else "unknown"


def summary(p: HardwareProfile) -> str:
    cpu = p.cpu
    lines = [
        f"{p.name} ({p.source}): {p.os.system} {p.os.kernel or ''} {p.os.distro or ''}".rstrip(),
        f"CPU    {cpu.model or 'unknown'} [{cpu.arch}] cores={cpu.cores or '?'} "
        f"threads={cpu.threads or '?'}"
        + (f" bw={cpu.bandwidth_gbps:g} GB/s" if cpu.bandwidth_gbps else "")
        + (" (measured)" if cpu.bandwidth_source == bw.SOURCE else ""),
        f"memory {_gib(p.memory.total_bytes)} total, {_gib(p.memory.available_bytes)} available",
    ]
    if cpu.flags:
        lines.append(f"flags  {' '.join(cpu.flags)}")
    for i, a in enumerate(p.accelerators):
        kind = "unified" if a.unified else "VRAM"
        lines.append(
            f"GPU {i}  {a.vendor} {a.name} [{a.arch or '?'}] {kind} {_gib(a.memory_bytes)}, "
            f"budget {_gib(a.memory_budget_bytes)}"
            + (f" ({a.budget_source})" if a.budget_source else "")
            + (f", bw {a.bandwidth_gbps:g} GB/s" if a.bandwidth_gbps else "")
        )
        if a.gtt_bytes is not None or a.carveout_bytes is not None:
            lines.append(f"       GTT {_gib(a.gtt_bytes)}, VRAM carve-out {_gib(a.carveout_bytes)}")
    if not p.accelerators:
        lines.append("GPU    none found")
    for v in p.vulkan_devices:
        lines.append(f"vulkan {v.name} ({v.device_type or '?'}, {v.driver_name or '?'})")
    if p.defaults:
        lines.append(f"defaults (not read from the machine): {', '.join(p.defaults)}")
    lines += [f"warning: {w}" for w in p.warnings]
    return "\n".join(lines) + "\n"
