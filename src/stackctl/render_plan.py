"""What a lock asks of a host, per backend and OS: roles, packages, devices, images, ISA flags.

Pure: everything here is decided from the lock (and the renderer's own tables below), never from
the machine rendering it. render.py turns the result into vars and files.
"""

from __future__ import annotations

import re
from typing import Any

from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.models.resolved import ArtefactPin

# Build-time packages per backend (Debian/Ubuntu names, engines.md 1.4). `cpu` keeps exactly the
# skeleton's toolchain so the CPU path and its build cache stay as they were.
BUILD_PACKAGES: dict[str, list[str]] = {
    "cpu": ["build-essential", "cmake"],
    "cuda": ["build-essential", "cmake"],
    "rocm": ["build-essential", "cmake"],
    # glslang-tools: ggml-vulkan's CMake also looks for glslangValidator (issue 15)
    "vulkan": [
        "build-essential",
        "cmake",
        "libvulkan-dev",
        "glslc",
        "glslang-tools",
        "spirv-headers",
    ],
    "metal": [],
}
# Commands whose presence means the toolchain is there (probed before installing anything).
BUILD_COMMANDS: dict[str, list[str]] = {
    "cpu": ["cmake", "c++", "make"],
    "cuda": ["cmake", "c++", "make", "nvcc"],
    "rocm": ["cmake", "c++", "make", "hipconfig"],
    "vulkan": ["cmake", "c++", "make", "glslc"],
    "metal": ["cmake", "c++", "make"],
}
# Device nodes the service may open (systemd DeviceAllow=; globs only in group names: 10.5).
NVIDIA_COMMON = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
DRM = ["char-drm"]
GPU_GROUPS = {"rocm": ["render", "video"], "vulkan": ["render", "video"]}
# Where the ROCm user-space comes from when the lock names no version (AMD's apt repository).
ROCM_DEFAULT = "7.2.1"
# Baseline CPU ISA for images that must run on other CPUs than the build host's.
X86_ISA = [("avx", "GGML_AVX"), ("avx2", "GGML_AVX2"), ("fma", "GGML_FMA"), ("f16c", "GGML_F16C"),
           ("bmi2", "GGML_BMI2"), ("avx512f", "GGML_AVX512")]  # fmt: skip
X86_BASELINE = ["avx", "avx2", "fma", "f16c", "bmi2"]  # x86-64-v3
ARM_BASELINE = "armv8.2-a+dotprod"  # Cortex-A76 (Raspberry Pi 5) and newer, Grace included
_VERSION = re.compile(r"(\d+(?:\.\d+)*)")


def backend(lock: Lockfile) -> str:
    return lock.resolved.engine.backend


def is_macos(lock: Lockfile) -> bool:
    return lock.resolved.platform.os == "darwin" or backend(lock) == "metal"


def gpu_count(lock: Lockfile) -> int:
    split = lock.resolved.placement.tensor_split
    if split:
        return len(split)
    return 0 if backend(lock) in ("cpu", "metal") else 1


def version_floor(spec: str | None) -> str | None:
    """'>=12.8' -> '12.8'; None stays None."""
    if not spec:
        return None
    found = _VERSION.search(spec)
    return found.group(1) if found else None


def host_roles(lock: Lockfile) -> list[str]:
    """The provisioning roles this lock needs, in run order, before engine/model/service."""
    r = lock.resolved
    name = backend(lock)
    roles: list[str] = []
    if name in ("rocm", "vulkan") and (r.requirements.kernel_params or r.requirements.kernel):
        roles.append("stackctl_host_kernel")
    roles += {
        "cuda": ["stackctl_host_nvidia"],
        "rocm": ["stackctl_host_rocm"],
        "vulkan": ["stackctl_host_vulkan"],
        "metal": ["stackctl_host_apple"],
    }.get(name, [])
    return roles


ENGINE_ROLES = {"ds4": "stackctl_engine_ds4", "mlx-lm": "stackctl_engine_mlx"}


def engine_role(lock: Lockfile) -> str:
    return ENGINE_ROLES.get(lock.resolved.engine.name, "stackctl_engine_llamacpp")


def playbook_roles(lock: Lockfile) -> list[str]:
    # an MLX model is a repo snapshot (many files): the mlx role fetches it with the engine's hf
    model = [] if lock.resolved.engine.name == "mlx-lm" else ["stackctl_model"]
    return [*host_roles(lock), engine_role(lock), *model, "stackctl_service"]


def device_allow(lock: Lockfile) -> list[str]:
    """systemd DeviceAllow= entries (with access mode) for the backend's GPU device nodes."""
    name = backend(lock)
    if name == "cuda":
        return [f"{d} rw" for d in NVIDIA_COMMON] + [
            f"/dev/nvidia{i} rw" for i in range(max(gpu_count(lock), 1))
        ]
    if name == "rocm":
        return ["/dev/kfd rw", *(f"{d} rw" for d in DRM)]
    if name == "vulkan":
        return [f"{d} rw" for d in DRM]
    return []


def container_devices(lock: Lockfile) -> list[str]:
    """Devices a container needs (podman/compose); NVIDIA goes through CDI."""
    name = backend(lock)
    if name == "cuda":
        return ["nvidia.com/gpu=all"]
    if name == "rocm":
        return ["/dev/kfd", "/dev/dri"]
    if name == "vulkan":
        return ["/dev/dri"]
    return []


def shared_libs(lock: Lockfile) -> bool:
    """HIP cannot link statically: the resolver asks for shared libs, installed beside bin/."""
    return "-DBUILD_SHARED_LIBS=ON" in lock.resolved.engine.cmake_flags


def image_isa_flags(lock: Lockfile) -> list[str]:
    """Explicit ISA flags for an image build: the planned CPU's, or a documented baseline."""
    platform = lock.resolved.platform
    if platform.arch in ("aarch64", "arm64"):
        return [f"-DGGML_CPU_ARM_ARCH={ARM_BASELINE}"]
    have = set(platform.cpu_flags) or set(X86_BASELINE)
    return [f"-D{option}=ON" for flag, option in X86_ISA if flag in have]


def host_needs(lock: Lockfile) -> str:
    """What a host must provide to run this stack's image (its label and README say so)."""
    r = lock.resolved
    name = backend(lock)
    if name == "cuda":
        driver = version_floor(r.requirements.driver)
        return (
            f"NVIDIA driver >= {driver or 'the CUDA runtime minimum'} and the NVIDIA "
            "Container Toolkit or CDI (--gpus all / --device nvidia.com/gpu=all)"
        )
    if name == "rocm":
        return "amdgpu kernel driver; pass /dev/kfd and /dev/dri, groups video and render"
    if name == "vulkan":
        return "a Vulkan driver on the host; pass /dev/dri, groups video and render"
    return "a container engine only (CPU image)"


def image_cmake_flags(lock: Lockfile) -> list[str]:
    """The lock's flags with GGML_NATIVE off and an explicit ISA list: images move between CPUs."""
    flags = [f for f in lock.resolved.engine.cmake_flags if not f.startswith("-DGGML_NATIVE=")]
    return [*flags, "-DGGML_NATIVE=OFF", *image_isa_flags(lock)]


def fetch_sources(pin: ArtefactPin) -> list[dict[str, Any]]:
    """What stackctl-fetch tries, in order: the pinned url, then the pin's other sources."""
    return [{"kind": "url", "url": pin.url}] + [
        source.model_dump(mode="json", exclude_defaults=True) for source in pin.sources
    ]


def model_parts(lock: Lockfile, host: HostLayout, model_path: str) -> list[dict[str, Any]]:
    """Every shard of a split GGUF (`-00001-of-0000N.gguf`), fetched whole; one entry otherwise."""
    artefact = lock.resolved.model.artefact
    folder = model_path.rsplit("/", 1)[0]
    total = artefact.parts
    match = re.search(r"-00001-of-(\d{5})\.gguf$", artefact.file)
    if total == 1 or match is None:
        return [{"file": artefact.file, "url": artefact.url, "path": model_path,
                 "sha256": artefact.sha256, "sources": fetch_sources(artefact)}]  # fmt: skip
    parts = []
    for index in range(1, total + 1):
        name = f"-{index:05d}-of-{total:05d}.gguf"
        file = artefact.file[: match.start()] + name
        url = artefact.url[: len(artefact.url) - len(artefact.file)] + file
        parts.append({"file": file, "url": url, "path": f"{folder}/{file}",
                      "sha256": artefact.sha256 if index == 1 else None,
                      "sources": [{"kind": "url", "url": url}]})  # fmt: skip
    return parts


def _cuda(lock: Lockfile) -> dict[str, Any]:
    reqs = lock.resolved.requirements
    cuda = version_floor(reqs.runtime.get("cuda"))
    driver = version_floor(reqs.driver)
    branch = driver.split(".")[0] if driver else None
    return {
        "version": cuda,
        "toolkit_package": f"cuda-toolkit-{cuda.replace('.', '-')}" if cuda else "cuda-toolkit",
        "driver_min": driver,
        "driver_branch": branch,
        "driver_packages": list(reqs.packages) or (
            [f"nvidia-headless-{branch}-server-open", f"nvidia-utils-{branch}-server"]
            if branch else []
        ),
    }  # fmt: skip


def _kernel(lock: Lockfile) -> dict[str, Any]:
    reqs = lock.resolved.requirements
    return {
        "params": list(reqs.kernel_params),
        "min": version_floor(reqs.kernel),
        "firmware": reqs.firmware,
        "refuse": [q.model_dump(mode="json") for q in lock.resolved.quirks],
    }


def wired_limit_mb(lock: Lockfile) -> int:
    """GPU wired limit for Apple Silicon: the planned memory plus 10 %, in MiB."""
    total = lock.resolved.predicted.memory_total_bytes
    return int(total * 1.1 / 2**20) + 1


def host_vars(lock: Lockfile) -> dict[str, Any]:
    """`stackctl_host`: what the provisioning roles read."""
    r = lock.resolved
    name = backend(lock)
    return {
        "backend": name,
        "os": "darwin" if is_macos(lock) else "linux",
        "arch": r.platform.arch,
        "gpu_count": gpu_count(lock),
        "groups": GPU_GROUPS.get(name, []),
        "packages": list(r.requirements.packages),
        "kernel": _kernel(lock),
        "cuda": _cuda(lock) if name == "cuda" else None,
        "rocm": {"version": version_floor(r.requirements.runtime.get("rocm")) or ROCM_DEFAULT}
        if name == "rocm" else None,
        "wired_limit_mb": wired_limit_mb(lock) if name == "metal" else None,
        "notes": list(r.requirements.notes),
    }  # fmt: skip
