"""stackctl as users install it: a built wheel in a fresh venv, run from a folder outside the
checkout. The wheel must carry the catalog, stacks, roles, templates and the Ansible callback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.mirror_fill import DEFAULT_MIRROR, fill_mirror

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # No STACKCTL_DATA and a cwd outside the checkout: only the wheel's own data can serve.
    env = {k: v for k, v in os.environ.items() if k != "STACKCTL_DATA"}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--sdist", "--wheel", "-o", dist, REPO, cwd=dist)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    venv = tmp_path_factory.mktemp("venv")
    assert run(sys.executable, "-m", "venv", venv, cwd=venv).returncode == 0
    [wheel] = dist.glob("stackctl-*.whl")
    done = run(venv / "bin/pip", "install", "-q", wheel, cwd=venv)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_wheel_and_sdist_carry_the_data_and_pass_twine(installed: Path) -> None:
    dist = next(p for p in installed.parent.iterdir() if p.name.startswith("dist"))
    [wheel] = dist.glob("stackctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "stackctl/_data/catalog/hardware.yaml",
        "stackctl/_data/stacks/tiny-cpu.yaml",
        "stackctl/_data/roles/stackctl_model/files/stackctl-fetch",
        "stackctl/_data/templates/Containerfile.j2",
        "stackctl/ansible_plugins/callback/stackctl_events.py",
    ):
        assert needed in names
    checked = run(sys.executable, "-m", "twine", "check", *dist.iterdir(), cwd=dist)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_plan_lock_render_and_apply_check_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    stackctl = installed / "bin/stackctl"
    plan = run(stackctl, "plan", "--system", "Strix Halo 128GB", "--json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert json.loads(plan.stdout)["chosen"]["model"]
    locked = run(stackctl, "lock", "tiny-cpu", "--json", cwd=tmp_path)
    assert locked.returncode == 0, locked.stderr[-3000:]
    [lock] = (tmp_path / "lockfiles").glob("tiny-cpu.*.lock.yaml")
    rendered = run(stackctl, "render", lock, "-o", "out", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (tmp_path / "out/playbook.yml").is_file()
    assert (tmp_path / "out/roles/stackctl_model/files/stackctl-fetch").is_file()
    mirror = fill_mirror(DEFAULT_MIRROR)
    checked = run(stackctl, "apply", "tiny-cpu", "--check", "--mirror", mirror, "--json",
                  cwd=tmp_path)  # fmt: skip
    assert checked.returncode == 0, checked.stderr[-4000:]
    assert json.loads(checked.stdout)["check"] is True
