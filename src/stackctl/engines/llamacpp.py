"""llama.cpp adapter: CMake flags per backend and llama-server argv for the pinned build.

Flag spellings are those of the pinned build's `llama-server --help` (b11434): several flags were
renamed or removed in 2026 (`--no-mmap` became `--load-mode none`), so nothing here is spelt from
memory of older builds.
"""

from __future__ import annotations

import hashlib

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
}


def cmake_flags(engine: EngineEntry, backend: str) -> list[str]:
    flags = list(_COMMON_FLAGS) + list(_BACKEND_FLAGS[backend])
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
    threads: int,
    flash_attn: str,
    parallel: int,
    cache_type_k: str,
    cache_type_v: str,
    alias: str,
) -> list[str]:
    """llama-server arguments that follow `llama-server -m MODEL`."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--ctx-size",
        str(context),
        "--threads",
        str(threads),
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
    ]
