"""ds4 adapter (antirez/ds4): build targets per backend and ds4-server argv.

Flags from antirez/ds4 README / ds4_server.c (engines.md section 8): `--ctx`, `--host`,
`--port`, `-t/--threads`, `--metal|--cuda`. The model is passed with `-m` by the renderer.
"""

from __future__ import annotations

# `make` builds Metal on macOS; `make cuda-spark` targets GB10, `make cuda-generic` any CUDA GPU.
MAKE_TARGETS = {"metal": "all", "cuda": "cuda-generic", "cuda-gb10": "cuda-spark"}


def make_target(backend: str, gpu_arch: str | None) -> str:
    if backend == "cuda" and gpu_arch == "sm_121":
        return MAKE_TARGETS["cuda-gb10"]
    return MAKE_TARGETS[backend]


def server_args(
    *, host: str, port: int, context: int, threads: int | None, backend: str
) -> list[str]:
    """ds4-server arguments that follow `ds4-server -m MODEL`; no --threads when unknown."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--ctx",
        str(context),
        *(["--threads", str(threads)] if threads else []),
        f"--{backend}",
    ]
