"""The Vulkan header requirement travels from the catalog into the lock and the rendered vars;
the CUDA-from-PyPI script refuses a CUDA whose PyPI wheels carry no compiler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from stackctl.catalog import load_catalog
from stackctl.lock import read_lockfile
from stackctl.models.hardware import Accelerator
from stackctl.render import make_environment, render_stack
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir, roles_dir, templates_dir
from stackctl.spec import load_profile, load_stack

REPO = Path(__file__).resolve().parents[2]


def _vulkan_engine_vars(lock_path: Path) -> dict[str, object]:
    lock = read_lockfile(lock_path)
    files = render_stack(lock, make_environment(templates_dir()), roles=roles_dir(),
                         lock_name=str(lock_path))  # fmt: skip
    group_vars = next(f.content for f in files if f.path == "group_vars/all/stackctl.yml")
    engine: dict[str, object] = YAML(typ="safe").load(group_vars)["stackctl_engine"]
    return engine


def test_vulkan_lock_pins_the_header_debs_with_their_source() -> None:
    engine = read_lockfile(REPO / "lockfiles/strix-halo-128-vulkan.lock.yaml").resolved.engine
    headers = engine.vulkan_headers
    assert headers is not None
    assert headers.min_version == "1.3.272"
    assert "LayerSettingEXT" in headers.source
    assert [d.file for d in headers.debs] == [
        "libvulkan-dev_1.4.309.0-1_amd64.deb",
        "spirv-headers_1.6.1+1.4.309.0-1_all.deb",
    ]
    assert all(d.verified and d.sha256 and len(d.sha256) == 64 for d in headers.debs)


def test_other_backends_carry_no_vulkan_headers() -> None:
    for name in ("cpu-x86", "rtx-4090", "strix-halo-128-rocm"):
        lock = read_lockfile(REPO / f"lockfiles/{name}.lock.yaml")
        assert lock.resolved.engine.vulkan_headers is None
        assert "vulkan_headers" not in _vulkan_engine_vars(REPO / f"lockfiles/{name}.lock.yaml")


def test_rendered_vulkan_vars_carry_headers_and_glslang() -> None:
    engine = _vulkan_engine_vars(REPO / "lockfiles/strix-halo-128-vulkan.lock.yaml")
    assert "glslang-tools" in engine["build_packages"]  # type: ignore[operator]
    headers = engine["vulkan_headers"]
    assert isinstance(headers, dict)
    assert headers["min_version"] == "1.3.272"


def test_lavapipe_resolves_to_vulkan_with_every_layer_offloaded(cpu_profile: Path) -> None:
    """A software Vulkan device (vendor mesa) is planned like an iGPU that is the CPU."""
    hardware = load_profile(cpu_profile)
    lavapipe = Accelerator(vendor="mesa", name="llvmpipe (LLVM 15.0.6, 256 bits)",
                           memory_bytes=hardware.memory.total_bytes, unified=True)  # fmt: skip
    hardware = hardware.model_copy(update={"accelerators": [lavapipe]})
    spec = load_stack(REPO / "tests/data/stacks/tiny-vulkan.yaml")
    resolved = resolve_stack(spec, hardware, load_catalog(catalog_dir()))
    assert resolved.engine.backend == "vulkan"
    assert "-DGGML_VULKAN=ON" in resolved.engine.cmake_flags
    assert resolved.engine.vulkan_headers is not None
    assert resolved.placement.ngl == 999
    # lavapipe crashes at the first prompt with flash attention on (catalog/quirks.yaml)
    args = resolved.runtime.server_args
    assert args[args.index("--flash-attn") + 1] == "off"
    assert args[args.index("--cache-type-v") + 1] == "f16"
    assert "vulkan-software-device-no-flash-attn" in {q.id for q in resolved.quirks}


@pytest.mark.parametrize("version", ["12.8", "12.9"])
def test_cuda_from_pypi_refuses_cuda_12(version: str, tmp_path: Path) -> None:
    script = REPO / "roles/stackctl_engine_llamacpp/files/cuda-from-pypi.sh"
    done = subprocess.run(["sh", str(script), str(tmp_path), version, sys.executable],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 3
    assert f"CUDA {version} is not on PyPI as a compiler" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing downloaded
