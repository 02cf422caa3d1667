"""mlx-lm adapter: the mlx_lm.server argv after `--model DIR` (engines.md 7.1; flags read in
mlx_lm/server.py of the pinned 0.32.2 wheel)."""

from __future__ import annotations


def server_args(*, host: str, port: int, users: int, cache_bytes: int) -> list[str]:
    """Host and port; CORS limited to the server's own origin (the default `*` lets any web
    page a local browser opens call the API); concurrent decodes capped at the planned users;
    the prompt cache capped at the planned KV bytes, because mlx-lm's memory is wired and an
    unbounded cache has panicked macOS (ml-explore/mlx-lm#883)."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--allowed-origins",
        f"http://{host}:{port}",
        "--decode-concurrency",
        str(users),
        "--prompt-cache-bytes",
        str(cache_bytes),
    ]
