"""The Vulkan roles' refusals, run for real with ansible-playbook on this box's rendered tree:
the engine role stops before building when the Vulkan headers are too old and the fetch is
disabled, naming both versions; the host role refuses a box whose only Vulkan device is
llvmpipe unless software Vulkan is asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_vulkan_e2e import HEADER_VERSION, STACK, lavapipe_profile
from tests.support.role_run import run_role_tasks

pytestmark = pytest.mark.vulkan

MIN_VERSION = "1.3.272"  # catalog/engines.yaml llama.cpp vulkan_headers.min_version


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("vulkan-refusals")
    profile = lavapipe_profile(project)
    out = project / "tree"
    stackctl("lock", str(STACK), "--hardware", str(profile), cwd=project)
    stackctl(
        "render", str(next(project.glob("lockfiles/*.lock.yaml"))), "-o", str(out), cwd=project
    )
    return out


def stackctl(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_old_headers_without_fetch_refuse_before_building(tree: Path, tmp_path: Path) -> None:
    system = subprocess.run(["sh", str(HEADER_VERSION), "/usr/include"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    old = system and tuple(map(int, system.split("."))) < (1, 3, 272)
    include = "/usr/include" if old else str(tmp_path)  # an empty folder: no headers at all
    build = tmp_path / "build"
    done = run_role_tasks(tree, "stackctl_engine_llamacpp", "vulkan_headers", extra=[
        "-e", f"stackctl_engine_build={build}", "-e", "stackctl_vulkan_headers_fetch=false",
        "-e", f"stackctl_vulkan_system_include={include}"], env={})  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert f"needs Vulkan headers {MIN_VERSION} or newer" in output, output[-3000:]
    assert f"this box has {system if old else 'none'} in {include}/vulkan" in output
    assert "disabled (stackctl_vulkan_headers_fetch is false)" in output
    assert not build.exists()  # nothing fetched, unpacked or built


def test_host_role_refuses_llvmpipe_by_default(tree: Path) -> None:
    env = {"STACKCTL_VULKAN_SOFTWARE": ""}
    refused = run_role_tasks(tree, "stackctl_host_vulkan", "main", extra=[], env=env)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-3000:]
    assert "vulkaninfo shows no Vulkan GPU (only the software device llvmpipe)" in output
    assert "llvmpipe" in output


def test_host_role_accepts_llvmpipe_when_asked(tree: Path) -> None:
    allowed = run_role_tasks(tree, "stackctl_host_vulkan", "main", extra=[],
                             env={"STACKCTL_VULKAN_SOFTWARE": "1"})  # fmt: skip
    output = allowed.stdout + allowed.stderr
    assert allowed.returncode == 0, output[-3000:]
    assert "software Vulkan allowed" in output
