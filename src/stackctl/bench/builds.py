"""Which builds of the lock's engine version this box has: the sweep compares their backends.

The build cache names each build `<engine>-<build_key>` (source + CMake flags + targets, see
engines/llamacpp.build_key), so the key alone cannot say which backend a folder holds. CMake
can: `out/CMakeCache.txt` records the source folder the build was configured from, the build
number stackctl passed and the GGML_<BACKEND> switches. A build counts only once its
`out/build.ok` exists (build-llamacpp.sh touches it last).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.models.resolved import EnginePin

# The CMake switch of each GPU backend (engines/llamacpp._BACKEND_FLAGS); none on: the CPU one.
_BACKEND_SWITCHES = (
    ("GGML_HIP", "rocm"),
    ("GGML_CUDA", "cuda"),
    ("GGML_VULKAN", "vulkan"),
    ("GGML_METAL", "metal"),
)


@dataclass(frozen=True)
class EngineBuild:
    backend: str
    build_key: str
    bin_dir: str


def cmake_cache(text: str) -> dict[str, str]:
    """`NAME:TYPE=VALUE` lines of a CMakeCache.txt as {NAME: VALUE}; comments skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in "#/" or "=" not in line:
            continue
        name_type, value = line.split("=", 1)
        out[name_type.split(":", 1)[0]] = value
    return out


def _on(value: str | None) -> bool:
    return (value or "").upper() in ("ON", "1", "TRUE", "YES", "Y")


def backend_of_cache(cache: dict[str, str]) -> str:
    on = [backend for switch, backend in _BACKEND_SWITCHES if _on(cache.get(switch))]
    return on[0] if on else "cpu"


def same_version(cache: dict[str, str], lock: Lockfile) -> bool:
    """Configured from the lock's source folder, with the lock's build number when it has one."""
    engine = lock.resolved.engine
    home = cache.get("CMAKE_HOME_DIRECTORY", "").rstrip("/")
    if not home.endswith("/" + engine.source_subdir.strip("/")):
        return False
    number = cache.get("LLAMA_BUILD_NUMBER")
    return engine.build_number is None or number == str(engine.build_number)


def build_in(folder: Path, lock: Lockfile) -> EngineBuild | None:
    out = folder / "out"
    cache_file = out / "CMakeCache.txt"
    if not (out / "build.ok").is_file() or not cache_file.is_file():
        return None
    cache = cmake_cache(cache_file.read_text(encoding="utf-8", errors="replace"))
    if not same_version(cache, lock):
        return None
    key = folder.name.removeprefix(f"{lock.resolved.engine.name}-")
    return EngineBuild(backend=backend_of_cache(cache), build_key=key, bin_dir=str(out / "bin"))


def bin_dir(engine: EnginePin, host: HostLayout) -> str | None:
    """A build's binaries: installed by apply, else finished in the build cache, else None."""
    folder = f"{engine.name}-{engine.build_key}"
    installed = Path(host.prefix) / "engines" / folder / "bin"
    if (installed / "llama-bench").is_file():
        return str(installed)
    cached = Path(host.cache_dir) / "build" / folder / "out"
    return str(cached / "bin") if (cached / "build.ok").is_file() else None


def other_builds(lock: Lockfile, host: HostLayout) -> dict[str, list[str]]:
    """Finished builds of the same engine version for other backends: backend -> build keys
    (sorted, so the sweep reads the same on every box)."""
    engine = lock.resolved.engine
    root = Path(host.cache_dir) / "build"
    found: dict[str, list[str]] = {}
    for folder in sorted(root.glob(f"{engine.name}-*")) if root.is_dir() else []:
        build = build_in(folder, lock)
        if build is None or build.backend == engine.backend:
            continue
        found.setdefault(build.backend, []).append(build.build_key)
    return dict(sorted(found.items()))
