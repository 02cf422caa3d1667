"""A CPU with AMX gets --no-repack: b11434's AMX kernels crash on the first graph (quirk
x86-amx-no-repack, gdb backtrace in its source). Without AMX the engine default stays."""

from __future__ import annotations

from pathlib import Path

from stackctl.catalog import load_catalog
from stackctl.cli.hardware_args import load_profile
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir
from stackctl.spec import load_stack, stack_path


def _args(cpu_profile: Path, extra_flags: list[str]) -> list[str]:
    hardware = load_profile(cpu_profile)
    cpu = hardware.cpu.model_copy(update={"flags": [*hardware.cpu.flags, *extra_flags]})
    resolved = resolve_stack(
        load_stack(stack_path("tiny-cpu")),
        hardware.model_copy(update={"cpu": cpu}),
        load_catalog(catalog_dir()),
    )
    return resolved.runtime.server_args


def test_amx_cpu_serves_without_repack(cpu_profile: Path) -> None:
    assert "--no-repack" in _args(cpu_profile, ["amx_tile", "amx_int8"])


def test_other_cpus_keep_the_engine_default(cpu_profile: Path) -> None:
    assert "--no-repack" not in _args(cpu_profile, [])
