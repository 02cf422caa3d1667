"""Wall time of `stackctl fleet plan` and of a no-op `stackctl apply -i --check` over 3, 10 and
30 host containers (sshd + Python from the fleet test's debootstrap base, on a private network).

    flock /tmp/stackctl-heavy.lock .venv/bin/python benchmarks/fleet_scale.py [--sizes 3 10 30]
                                                                             [--forks 10]

Every host is declared with the same CPU profile and the tiny-cpu stack, so planning resolves
once and the check run walks every task of the engine, model and service roles on each host
(nothing is installed: check mode). Containers and the network are removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fleet_lab import HostSpec, Lab, remove_leftovers  # noqa: E402
from tests.support.mirror_fill import DEFAULT_MIRROR, fill_mirror  # noqa: E402


def stackctl(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd, text=True, capture_output=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started, done


def one_size(size: int, forks: int, mirror: Path, work: Path) -> dict[str, float | int]:
    project = work / f"fleet-{size}"
    project.mkdir()
    shutil.copy(ROOT / "tests/data/profiles/cpu-x86-2core.yaml", project / "cpu-box.yaml")
    with Lab(project, prefix=f"stackctl-bench{size}") as lab:
        started = time.perf_counter()
        hosts = lab.start([HostSpec(f"h{i:02d}") for i in range(size)])
        start_s = time.perf_counter() - started
        inventory = {
            "all": {
                "vars": {**lab.inventory_vars(), "stackctl_stack": "tiny-cpu",
                         "stackctl_hardware": "cpu-box.yaml"},
                "hosts": {n: {"ansible_host": h.address} for n, h in hosts.items()},
            }
        }  # fmt: skip
        with (project / "lab.yml").open("w") as handle:
            YAML().dump(inventory, handle)
        plan_s, plan = stackctl("fleet", "plan", "-i", "lab.yml", "--json", cwd=project)
        if plan.returncode != 0:
            raise SystemExit(f"fleet plan failed:\n{plan.stderr[-3000:]}")
        apply_s, applied = stackctl(
            "apply", "-i", "lab.yml", "--check", "--forks", str(forks), "--mirror", str(mirror),
            "--json", cwd=project,
        )  # fmt: skip
        if applied.returncode != 0:
            raise SystemExit(f"apply --check failed:\n{applied.stderr[-3000:]}")
    return {"hosts": size, "forks": forks, "start_s": start_s, "plan_s": plan_s,
            "check_apply_s": apply_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args()
    mirror = fill_mirror(DEFAULT_MIRROR)
    import docker

    remove_leftovers(docker.from_env())
    print(
        f"{'hosts':>5} {'forks':>5} {'containers up':>14} {'fleet plan':>11} {'apply --check':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="stackctl-fleet-scale-") as tmp:
        for size in args.sizes:
            forks = min(args.forks, size)
            row = one_size(size, forks, mirror, Path(tmp))
            print(
                f"{row['hosts']:>5} {row['forks']:>5} {row['start_s']:>13.1f}s "
                f"{row['plan_s']:>10.1f}s {row['check_apply_s']:>13.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
