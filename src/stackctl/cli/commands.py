"""The registry of subcommand modules, in the order `--help` lists them."""

from __future__ import annotations

from types import ModuleType

from stackctl.cli import (
    apply_cmd,
    bench_cmd,
    calibrate_cmd,
    check_cmd,
    detect_cmd,
    estimate_cmd,
    fleet_cmd,
    image_cmd,
    lock_cmd,
    mirror_cmd,
    models_cmd,
    plan_cmd,
    render_cmd,
    report_cmd,
    rollback_cmd,
    service_cmd,
)

MODULES: list[ModuleType] = [
    detect_cmd,
    estimate_cmd,
    plan_cmd,
    models_cmd,
    lock_cmd,
    render_cmd,
    apply_cmd,
    fleet_cmd,
    service_cmd,
    rollback_cmd,
    image_cmd,
    mirror_cmd,
    bench_cmd,
    check_cmd,
    calibrate_cmd,
    report_cmd,
]
