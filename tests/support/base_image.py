"""A Debian base image made here, for hosts without a registry: debootstrap, then import.

The rootfs tarball is cached under /var/cache/stackctl/base (override STACKCTL_BASE_CACHE), so
only the first run on a machine pays for debootstrap. Run as a script to make it ahead of time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = "bookworm"
ARCHIVE = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("STACKCTL_BASE_CACHE", "/var/cache/stackctl/base"))
DOCKER_TAG = f"localhost/stackctl-base:{SUITE}"


def rootfs_tarball() -> Path:
    """debootstrap a minimal bookworm once; the tarball is what every engine imports."""
    tarball = CACHE / f"{SUITE}-minbase.tar"
    if tarball.is_file():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["nice", "-n", "19", "debootstrap", "--variant=minbase", SUITE, str(rootfs), ARCHIVE],
            check=True, capture_output=True, timeout=1800,
        )  # fmt: skip
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        part = tarball.with_name(tarball.name + ".part")
        subprocess.run(
            ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(part), "."],
            check=True, timeout=600,
        )  # fmt: skip
        part.replace(tarball)
    return tarball


def docker_base() -> str:
    """The base in the Docker Engine, by its id (sha256:...): imported once, then kept."""
    import docker

    client = docker.from_env()
    try:
        return str(client.images.get(DOCKER_TAG).id)
    except docker.errors.ImageNotFound:
        pass
    with rootfs_tarball().open("rb") as handle:
        client.api.import_image_from_data(handle.read(), repository=DOCKER_TAG.split(":")[0],
                                          tag=SUITE)  # fmt: skip
    return str(client.images.get(DOCKER_TAG).id)


def buildah_base(run: object) -> str:
    """The same base in buildah's storage (the engine's own `run`), by its id."""
    from stackctl.image.engines import BuildahEngine

    assert isinstance(run, BuildahEngine)
    if not run.has_image(DOCKER_TAG):
        container = run.run("from", "scratch").stdout.strip()
        mount = run.run("mount", container).stdout.strip()
        subprocess.run(["tar", "-C", mount, "-xf", str(rootfs_tarball())], check=True)
        run.run("umount", container)
        made = run.run("commit", container, DOCKER_TAG)
        run.run("rm", container)
        assert made.returncode == 0, made.stderr
    return run.image_id(DOCKER_TAG)


if __name__ == "__main__":
    print(rootfs_tarball())
    if len(sys.argv) > 1 and sys.argv[1] == "docker":
        print(docker_base())
