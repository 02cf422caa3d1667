"""Checks apply makes before it changes anything: disk, RAM, port, toolchain.

Each check returns its problems as one line each; apply refuses with all of them at once, so a
user fixes the box in one pass instead of discovering the problems one failed run at a time.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

from stackctl import layout
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout

GIB = 1 << 30
# A CPU build of llama.cpp b11434 (server, bench, fit-params) took 305 MB in
# /var/cache/stackctl/build (measured with du on this project's build cache, 2026-12-04);
# GPU backends add their kernels, so ask for ~3x that.
BUILD_BYTES = 1 * GIB
COMPILERS = ("c++", "g++", "clang++")
BUILD_TOOLS = ("make", "ninja")


def _existing(path: Path) -> Path:
    """The nearest folder that exists: where a not-yet-created path will land."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free(path: Path) -> tuple[int, int]:
    folder = _existing(path)
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize, folder.stat().st_dev


def _engine_built(lock: Lockfile, host: HostLayout) -> bool:
    installed = Path(layout.server_binary(lock, host)).exists()
    # build-llamacpp.sh touches build.ok last: a build killed half-way has none
    finished = Path(layout.build_log(lock, host)).parent / "out" / "build.ok"
    return installed or finished.is_file()


def _gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB"


def check_disk(lock: Lockfile, host: HostLayout) -> list[str]:
    """Free space for the model download and the engine build, summed per filesystem."""
    wants: list[tuple[Path, int]] = []
    model = Path(layout.model_path(lock, host))
    size = lock.resolved.model.artefact.size
    if size and not model.is_file():
        wants.append((model.parent, size))
    if not _engine_built(lock, host):
        wants.append((Path(host.cache_dir) / "build", BUILD_BYTES))
    needs: dict[int, tuple[Path, int, int]] = {}
    for folder, want in wants:
        free, device = _free(folder)
        first, _, total = needs.get(device, (folder, free, 0))
        needs[device] = (first, free, total + want)
    return [
        f"disk: {folder} needs {_gib(need)} free for the model and the build, has {_gib(free)}"
        for folder, free, need in needs.values()
        if free < need
    ]


def _kib_fields(path: Path) -> dict[str, int]:
    """`Name:  123 kB` lines of /proc/meminfo or /proc/PID/status, in bytes."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        words = rest.split()
        if len(words) == 2 and words[1] == "kB" and words[0].isdigit():
            out[name] = int(words[0]) * 1024
    return out


def check_ram(lock: Lockfile, running_pid: int | None) -> list[str]:
    """A CPU-placed stack must fit in available RAM, counting what our running server frees."""
    if lock.resolved.placement.ngl != 0:
        return []  # GPU memory is the resolver's fit, against the profile's VRAM
    available = _kib_fields(Path("/proc/meminfo")).get("MemAvailable")
    if available is None:
        return []
    if running_pid is not None:
        available += _kib_fields(Path(f"/proc/{running_pid}/status")).get("VmRSS", 0)
    need = lock.resolved.predicted.memory_total_bytes
    if need > available:
        return [f"ram: the stack is predicted to use {_gib(need)}, {_gib(available)} is available"]
    return []


def check_port(lock: Lockfile, ours_running: bool) -> list[str]:
    """The port must be free, unless our own server holds it (apply replaces it)."""
    runtime = lock.resolved.runtime
    family = socket.AF_INET6 if ":" in runtime.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((runtime.host, runtime.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and ours_running:
                return []
            if exc.errno == errno.EADDRINUSE:
                return [
                    f"port: {runtime.host}:{runtime.port} is in use by another program "
                    f"(`ss -ltnp 'sport = :{runtime.port}'` shows which)"
                ]
            return [f"port: cannot bind {runtime.host}:{runtime.port}: {exc.strerror}"]
    return []


def check_toolchain(lock: Lockfile, host: HostLayout) -> list[str]:
    """A llama.cpp build needs cmake, a C++ compiler and make or ninja, unless it is cached."""
    if lock.resolved.engine.name != "llama.cpp" or _engine_built(lock, host):
        return []
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if not any(shutil.which(tool) for tool in COMPILERS):
        missing.append("a C++ compiler (" + " or ".join(COMPILERS) + ")")
    if not any(shutil.which(tool) for tool in BUILD_TOOLS):
        missing.append(" or ".join(BUILD_TOOLS))
    if not missing:
        return []
    return [f"toolchain: building llama.cpp needs {', '.join(missing)} (scripts/bootstrap.sh)"]


def preflight(
    lock: Lockfile, host: HostLayout, *, running_pid: int | None, ours_running: bool
) -> list[str]:
    return [
        *check_disk(lock, host),
        *check_ram(lock, running_pid),
        *check_port(lock, ours_running),
        *check_toolchain(lock, host),
    ]
