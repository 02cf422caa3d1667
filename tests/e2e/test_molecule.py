"""Molecule scenarios for the engine, model and service roles (molecule/<role>/): converge,
idempotence and testinfra verify in a container from the fleet test's debootstrap base.

The role variables come from a real lock (tiny-cpu on this machine's profile), rendered here;
the artefacts come from the test mirror and the llama.cpp build from the controller's cache
(read-only mount), as in the fleet test. The docker driver needs the community.docker
collection: tests.support.molecule_env unpacks it from the `ansible` wheel on PyPI (no Galaxy
here).

  flock /tmp/stackctl-heavy.lock .venv/bin/pytest -m molecule tests/e2e/test_molecule.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackctl.detect import LiveRunner, detect_hardware
from stackctl.models.render import HostLayout
from stackctl.pipeline import load_stack_inputs, make_lock, render_lock
from stackctl.render import stack_vars
from tests.conftest import REPO
from tests.support.fleet_base import ensure_base_image
from tests.support.mirror_fill import DEFAULT_MIRROR, fill_mirror
from tests.support.molecule_env import collections_path

pytestmark = pytest.mark.molecule

BUILD_CACHE = Path("/var/cache/stackctl/build")


@pytest.fixture(scope="module")
def role_vars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("docker") is None and not Path("/var/run/docker.sock").exists():
        pytest.skip("no Docker Engine")
    # this machine's own profile (the container shares its CPU), so CPU quirks apply as here
    lock = make_lock(load_stack_inputs("tiny-cpu", detect_hardware(LiveRunner())))
    if not (BUILD_CACHE / f"llama.cpp-{lock.resolved.engine.build_key}/out/build.ok").is_file():
        pytest.skip("no cached CPU build: run the e2e apply test first")
    ensure_base_image()
    mirror = fill_mirror(DEFAULT_MIRROR)
    work = tmp_path_factory.mktemp("molecule")
    tree = render_lock(lock, work / "tiny-cpu.lock.yaml", work / "tree")
    variables = stack_vars(lock, HostLayout())
    variables.update(
        stackctl_files_dir=str(tree / "files"),
        stackctl_engine_source_local=str(mirror / lock.resolved.engine.source.file),
        stackctl_model_local=str(mirror / lock.resolved.model.artefact.file),
    )
    path = work / "vars.json"
    path.write_text(json.dumps(variables), encoding="utf-8")
    return path


@pytest.mark.parametrize("scenario", ["engine", "model", "service"])
def test_role_scenario(role_vars: Path, scenario: str) -> None:
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        STACKCTL_MOLECULE_VARS=str(role_vars),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
        ANSIBLE_FORCE_COLOR="0",
    )
    done = subprocess.run(
        [str(bin_dir / "molecule"), "test", "-s", scenario],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=1800, check=False,
    )  # fmt: skip
    log = done.stdout[-8000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert "idempotence" in log.lower()
