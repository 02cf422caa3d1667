"""The engine role's CUDA path on a box with the driver but no toolkit, run for real with
ansible-playbook on this box's rendered RTX 4090 tree. The driver query is replayed from real
recorded `nvidia-smi` tables (shared/fixtures/hw): a 580 driver gets the toolkit assembled
from NVIDIA's PyPI wheels (the path benchmarks/build_cuda.sh proves compiles), a 550 driver
is too old for CUDA 13 and gets nothing, and a box without the driver gets nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.role_run import run_role_tasks

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "hw"
REPORT = (
    "    - ansible.builtin.debug:\n"
    '        msg: "BUILD_ENV {{ stackctl_engine_build_env | default({}) | to_json }}"\n'
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cuda") / "tree"
    lock = REPO / "lockfiles/rtx-4090.lock.yaml"
    done = subprocess.run([sys.executable, "-m", "stackctl", "render", str(lock), "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def driver_replay(folder: Path, bundle: str) -> dict[str, str]:
    """PATH with an nvidia-smi that answers the role's query from a recorded table."""
    table = FIXTURES / bundle / "cmd" / "nvidia-smi.txt"
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n# replays the driver version of a recorded `nvidia-smi` table\n"
        f"sed -n 's/.*Driver Version: *\\([0-9.]*\\).*/\\1/p' '{table}'\n"
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


def build_env(tree: Path, env: dict[str, str], cache: Path) -> dict[str, str]:
    layout = json.dumps({"stackctl_layout": {"cache_dir": str(cache)}})
    done = run_role_tasks(tree, "stackctl_engine_llamacpp", "cuda_toolkit", after=REPORT,
                          env=env, extra=["-e", layout])  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found = re.search(r"BUILD_ENV (\{.*\})", done.stdout)
    assert found, done.stdout[-3000:]
    result: dict[str, str] = json.loads(found.group(1).replace('\\"', '"'))
    return result


def test_no_driver_leaves_the_toolkit_to_the_host_role(tree: Path, tmp_path: Path) -> None:
    assert build_env(tree, {"PATH": "/usr/bin:/bin"}, tmp_path) == {}
    assert not (tmp_path / "cuda-pypi").exists()


def test_driver_too_old_for_cuda_13_gets_no_pypi_toolkit(tree: Path, tmp_path: Path) -> None:
    env = driver_replay(tmp_path, "rtx4090-x8")  # 550.127.05
    assert build_env(tree, env, tmp_path) == {}
    assert not (tmp_path / "cuda-pypi").exists()


@pytest.mark.e2e  # downloads about 1 GB of wheels on a box that has not cached them
def test_driver_without_toolkit_builds_with_the_pypi_toolkit(tree: Path, tmp_path: Path) -> None:
    env = driver_replay(tmp_path, "dgx-spark-gb10-drv580.126")  # 580.126.09
    cache = Path("/var/cache/stackctl")
    got = build_env(tree, env, cache)
    root = Path(got["CUDAToolkit_ROOT"])
    assert root == cache / "cuda-pypi/cuda-13.0/site/nvidia/cu13"
    assert got["PATH"].startswith(f"{root}/bin:")
    nvcc = subprocess.run([str(root / "bin/nvcc"), "--version"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert "release 13.0" in nvcc.stdout
    assert (root / "lib64/stubs/libcuda.so").is_file()
