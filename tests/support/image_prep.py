"""The image tests' slow, mostly network- and disk-bound preparation, started in the background
when the session collects an image test: debootstrap the base, import it into the Docker Engine
and buildah, and build each engine's toolchain image (apt downloads and unpacks). On a fresh
machine that is several minutes that would otherwise run alone; here it overlaps the e2e tests'
compiles. The image tests wait for it (`wait`) and then find everything cached, as on a second
run. Clean storage for `image verify` keeps the base and toolchain images, so the proof is the
same either way.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

LOG = Path(os.environ.get("STACKCTL_BASE_CACHE", "/var/cache/stackctl/base")) / "prep.log"

_thread: threading.Thread | None = None
_error: Exception | None = None


def wanted(items: Iterable[pytest.Item]) -> bool:
    """An image test is collected and this box can build images (root, debootstrap)."""
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return False
    return any(item.get_closest_marker("image") is not None for item in items)


def _prepare() -> None:
    from stackctl.image.build import ImageOptions, build_toolchain
    from stackctl.image.engines import BuildahEngine, DockerEngine, Engine
    from stackctl.lock import read_lockfile
    from tests.support.base_image import buildah_base, docker_base
    from tests.support.mirror_fill import DEFAULT_MIRROR, fill_mirror
    from tests.support.render_cases import BY_NAME

    lock_path = BY_NAME["cpu-x86"].lock_path
    lock = read_lockfile(lock_path)
    fill_mirror(DEFAULT_MIRROR)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w", encoding="utf-8") as log:

        def line(text: str) -> None:
            log.write(text + "\n")
            log.flush()

        def toolchain(engine: Engine, base: str) -> None:
            line(f"{engine.name}: toolchain on {base}")
            build_toolchain(lock, lock_path, engine, DEFAULT_MIRROR, ImageOptions(base=base), line,
                            background=True)  # fmt: skip

        toolchain(DockerEngine(), docker_base())
        if shutil.which("buildah") is not None:
            buildah = BuildahEngine()
            toolchain(buildah, buildah_base(buildah))


def _run() -> None:
    global _error
    try:
        _prepare()
    except Exception as exc:  # noqa: BLE001 - handed to the test that waits, which reports it
        _error = exc


def start() -> None:
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_run, name="image-prep", daemon=True)
        _thread.start()


def wait() -> None:
    """Block until the background preparation ends; raise what it raised (see LOG)."""
    if _thread is not None:
        _thread.join()
    if _error is not None:
        raise RuntimeError(f"image preparation failed (log: {LOG})") from _error
