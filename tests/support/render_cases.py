"""The reference machines: golden locks under lockfiles/, rendered trees under tests/data/render/.

Goldens render from the committed locks (render is pure), so resolver changes never touch them;
`relock_case` re-resolves a case for the separate check that the lock is still reproducible.
Regenerate: `STACKCTL_UPDATE_GOLDEN=1 .venv/bin/python -m tests.support.render_cases`
(locks, slow) and `STACKCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_golden.py`
(trees).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.catalog import load_catalog
from stackctl.cli.hardware_args import load_profile
from stackctl.detect import declare_hardware
from stackctl.lock import make_lockfile, read_lockfile, write_lockfile
from stackctl.models.lock import Lockfile
from stackctl.pipeline import Inputs, lock_inputs
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir
from stackctl.spec import load_stack

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "lockfiles"
GOLDEN = REPO / "tests" / "data" / "render"
STACKS = "tests/data/render/stacks"


@dataclass(frozen=True)
class Case:
    name: str
    stack: str = "stacks/default.yaml"
    declared: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None

    @property
    def lock_path(self) -> Path:
        return LOCKS / f"{self.name}.lock.yaml"


CASES = [
    Case("strix-halo-128-rocm", f"{STACKS}/strix-rocm.yaml", {"system": "Strix Halo 128GB"}),
    Case("strix-halo-128-vulkan", "stacks/default.yaml", {"system": "Strix Halo 128GB"}),
    Case(
        "rtx-3070ti-64-moe",
        f"{STACKS}/moe-offload.yaml",
        {"gpus": ["RTX 3070 Ti"], "ram_gib": 64, "cpu": "Ryzen 7 7800X3D"},
    ),
    Case("rtx-4090", "stacks/default.yaml", {"gpus": ["RTX 4090"], "ram_gib": 64}),
    Case(
        "rtx-3090x2", "stacks/default.yaml", {"gpus": ["RTX 3090"], "gpu_count": 2, "ram_gib": 128}
    ),
    Case(
        "rtx-3090x2-llama-draft",
        f"{STACKS}/llama-draft.yaml",
        {"gpus": ["RTX 3090"], "gpu_count": 2, "ram_gib": 128},
    ),
    Case("mac-studio-m3-ultra", "stacks/default.yaml", {"system": "Mac Studio M3 Ultra 512GB"}),
    Case(
        "mac-studio-m3-ultra-ds4",
        f"{STACKS}/ds4-flash.yaml",
        {"system": "Mac Studio M3 Ultra 512GB"},
    ),
    # 36 GB: the 8-bit files do not fit, the 4-bit pair decides MLX vs llama.cpp (evidence)
    Case("mac-m4-max-36-mlx", f"{STACKS}/mlx-moe.yaml", {"gpus": ["Apple M4 Max"], "ram_gib": 36}),
    Case("dgx-spark", "stacks/default.yaml", {"system": "DGX Spark"}),
    Case("raspberry-pi-5", "stacks/default.yaml", {"system": "Raspberry Pi 5 8GB"}),
    Case("cpu-x86", "stacks/tiny-cpu.yaml", profile="tests/data/profiles/cpu-x86-2core.yaml"),
    Case("cpu-x86-7950x", "stacks/default.yaml", {"cpu": "Ryzen 9 7950X", "ram_gib": 64}),
]
BY_NAME = {c.name: c for c in CASES}


def wants_update() -> bool:
    return os.environ.get("STACKCTL_UPDATE_GOLDEN", "") not in ("", "0")


def relock_case(case: Case) -> Lockfile:
    """Resolve the case afresh, with paths recorded relative to the repository."""
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        spec_path = Path(case.stack)
        if case.profile:
            hardware = load_profile(Path(case.profile))
        else:
            hardware = declare_hardware(
                gpus=list(case.declared.get("gpus", [])),
                gpu_count=case.declared.get("gpu_count"),
                cpu=case.declared.get("cpu"),
                ram_gib=case.declared.get("ram_gib"),
                system=case.declared.get("system"),
            )
        inputs = Inputs(
            load_stack(spec_path),
            spec_path,
            hardware,
            Path(case.profile) if case.profile else None,
            load_catalog(catalog_dir()),
        )
        resolved = resolve_stack(inputs.spec, inputs.hardware, inputs.catalog)
        return make_lockfile(resolved, lock_inputs(inputs))
    finally:
        os.chdir(cwd)


def golden_lock(case: Case) -> Lockfile:
    return read_lockfile(case.lock_path)


def main(names: list[str]) -> int:
    for case in CASES:
        if names and case.name not in names:
            continue
        write_lockfile(relock_case(case), case.lock_path)
        print(f"wrote {case.lock_path.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
