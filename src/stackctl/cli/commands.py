"""The registry of subcommand modules, in the order `--help` lists them.

Modules are named, not imported: a command imports only its own module (and what that
module needs), so `stackctl plan` does not pay for Ansible, image building or the fleet
code at start-up. `--help`, a bad command or no command loads them all.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# module (under stackctl.cli) -> the subcommands its `register` adds, in `--help` order
MODULES: dict[str, tuple[str, ...]] = {
    "detect_cmd": ("detect",),
    "estimate_cmd": ("estimate",),
    "plan_cmd": ("plan",),
    "models_cmd": ("models",),
    "lock_cmd": ("lock",),
    "render_cmd": ("render",),
    "apply_cmd": ("apply",),
    "fleet_cmd": ("fleet",),
    "service_cmd": ("status", "stop", "logs", "destroy"),
    "rollback_cmd": ("rollback",),
    "image_cmd": ("image",),
    "mirror_cmd": ("mirror",),
    "bench_cmd": ("bench",),
    "check_cmd": ("check-output",),
    "calibrate_cmd": ("calibrate",),
    "report_cmd": ("report",),
}


def load(module: str) -> ModuleType:
    return importlib.import_module(f"stackctl.cli.{module}")


def modules_for(command: str | None) -> list[ModuleType]:
    """The one module that registers `command`, or every module when it is none of theirs."""
    for module, names in MODULES.items():
        if command in names:
            return [load(module)]
    return [load(module) for module in MODULES]
