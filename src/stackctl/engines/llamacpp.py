"""llama.cpp adapter: CMake flags per backend and llama-server argv for the pinned build.

Flag spellings are those of the pinned build's `llama-server --help` (b11434): several flags were
renamed or removed in 2026 (`--no-mmap` became `--load-mode none`), so nothing here is spelt from
memory of older builds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stackctl.models.catalog import EngineEntry

# Options every stackctl build sets: a self-contained static binary, no network at build time
# (the web UI would otherwise be downloaded), and the build number the lock records.
_COMMON_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)

_BACKEND_FLAGS: dict[str, tuple[str, ...]] = {
    # A host build tunes for the CPU it runs on; images for other CPUs come with issue 6.
    "cpu": ("-DGGML_NATIVE=ON",),
    "cuda": ("-DGGML_NATIVE=ON", "-DGGML_CUDA=ON"),
    "rocm": ("-DGGML_NATIVE=ON", "-DGGML_HIP=ON"),
    "vulkan": ("-DGGML_NATIVE=ON", "-DGGML_VULKAN=ON"),
    "metal": ("-DGGML_NATIVE=ON", "-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON"),
}

# Blackwell consumer/GB10 targets are built as arch-specific "a" variants upstream
# (ggml/src/ggml-cuda/CMakeLists.txt: 120a-real, 121a-real; engines.md 1.3).
_CUDA_ARCH_SUFFIX = {"120": "a-real", "121": "a-real"}


def cuda_architectures(archs: list[str]) -> str:
    """'sm_89', '8.9' -> '89-real'; one entry per distinct compute capability, sorted."""
    out = []
    for arch in archs:
        cc = arch.removeprefix("sm_").replace(".", "")
        out.append(cc + _CUDA_ARCH_SUFFIX.get(cc, "-real"))
    return ";".join(sorted(set(out)))


def cmake_flags(engine: EngineEntry, backend: str, gpu_archs: list[str] | None = None) -> list[str]:
    """CMake options for the pinned build; `gpu_archs` are sm_NN / gfxNNNN of the target GPUs."""
    common = list(_COMMON_FLAGS)
    if backend == "rocm":
        # HIP does not support static linking (ggml/src/ggml-hip/CMakeLists.txt, engines.md 1.2)
        common[common.index("-DBUILD_SHARED_LIBS=OFF")] = "-DBUILD_SHARED_LIBS=ON"
    flags = common + list(_BACKEND_FLAGS[backend])
    archs = sorted(set(gpu_archs or []))
    if backend == "cuda" and archs:
        flags.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures(archs)}")
    if backend == "rocm" and archs:
        flags.append(f"-DGPU_TARGETS={';'.join(archs)}")
    if engine.build_number is not None:
        flags.append(f"-DLLAMA_BUILD_NUMBER={engine.build_number}")
    if engine.commit is not None:
        flags.append(f"-DLLAMA_BUILD_COMMIT={engine.commit}")
    return flags


def build_key(
    source_sha256: str | None, source_url: str, flags: list[str], targets: list[str]
) -> str:
    """Names the build cache: the same source and flags never build twice."""
    digest = hashlib.sha256()
    for part in [source_sha256 or source_url, *flags, "--targets", *targets]:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def server_args(
    *,
    host: str,
    port: int,
    context: int,
    threads: int | None,
    flash_attn: str,
    parallel: int,
    cache_type_k: str,
    cache_type_v: str,
    alias: str,
    extra: ServerExtras | None = None,
) -> list[str]:
    """llama-server arguments that follow `llama-server -m MODEL`."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--ctx-size",
        str(context),
        *threads_args(threads),
        "--flash-attn",
        flash_attn,
        "--parallel",
        str(parallel),
        "--cache-type-k",
        cache_type_k,
        "--cache-type-v",
        cache_type_v,
        "--alias",
        alias,
        *(extra_args(extra) if extra else []),
    ]


def threads_args(threads: int | None) -> list[str]:
    """`--threads N`; nothing when N is unknown (0 or None): the engine then picks its own."""
    return ["--threads", str(threads)] if threads else []


@dataclass(frozen=True)
class ServerExtras:
    """Flags emitted only when they differ from llama.cpp's defaults (b11434 spellings)."""

    ngl: int | None = None
    n_cpu_moe: int = 0
    tensor_split: list[float] | None = None
    ubatch: int | None = None
    load_mode: str | None = None
    repack: bool | None = None
    spec_type: str | None = None
    spec_draft_n_max: int | None = None


def _num(value: float) -> str:
    return f"{value:g}"


def extra_args(extra: ServerExtras) -> list[str]:
    args: list[str] = []
    if extra.ngl is not None:
        args += ["--n-gpu-layers", "all" if extra.ngl >= 999 else str(extra.ngl)]
    if extra.n_cpu_moe:
        args += ["--n-cpu-moe", str(extra.n_cpu_moe)]
    if extra.tensor_split:
        args += ["--split-mode", "layer", "--tensor-split"]
        args.append(",".join(_num(x) for x in extra.tensor_split))
    if extra.ubatch is not None:
        args += ["--ubatch-size", str(extra.ubatch)]
    if extra.load_mode is not None:
        args += ["--load-mode", extra.load_mode]
    if extra.repack is False:
        args.append("--no-repack")
    if extra.spec_type is not None:
        args += ["--spec-type", extra.spec_type]
        if extra.spec_draft_n_max is not None:
            args += ["--spec-draft-n-max", str(extra.spec_draft_n_max)]
    return args
