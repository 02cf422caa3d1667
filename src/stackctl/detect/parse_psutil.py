"""Live CPU and memory facts through psutil (the same calls on Linux and macOS), written as
`key: value` lines so that a bundle replays them (cmd/psutil.txt); /proc and sysctl stay the
sources of what psutil does not know (model, flags, the GPU pools)."""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.detect.facts import key_values, to_int


@dataclass
class PsutilFacts:
    memory_total: int | None = None
    memory_available: int | None = None
    cpu_physical: int | None = None
    cpu_logical: int | None = None


def parse_psutil(text: str) -> PsutilFacts:
    kv = key_values(text)
    return PsutilFacts(
        memory_total=to_int(kv.get("memory_total")),
        memory_available=to_int(kv.get("memory_available")),
        cpu_physical=to_int(kv.get("cpu_physical")),
        cpu_logical=to_int(kv.get("cpu_logical")),
    )


def probe_psutil() -> str | None:
    try:
        import psutil
    except ImportError:
        return None
    mem = psutil.virtual_memory()
    lines = {
        "memory_total": mem.total,
        "memory_available": mem.available,
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_logical": psutil.cpu_count(logical=True),
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items() if v is not None)
