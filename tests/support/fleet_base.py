"""The fleet tests' host image: a debootstrap bookworm with sshd, Python and a C++ toolchain,
imported into Docker (this machine has no registry to pull from).

Built once per machine and kept under a fixed tag; `python -m tests.support.fleet_base` builds
it ahead of a test run. The toolchain is there because the llama.cpp role checks for it before
it finds the cached build; the build itself is seeded from the controller's cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
from docker.errors import ImageNotFound

BASE_IMAGE = "stackctl-fleet-base:bookworm-1"
SUITE_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["openssh-server", "python3", "build-essential", "cmake", "libgomp1", "iproute2"]


def ensure_base_image(client: docker.DockerClient | None = None) -> str:
    """debootstrap a minimal bookworm with sshd and Python and `docker import` it, once."""
    client = client or docker.from_env()
    try:
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="stackctl-fleet-base-") as tmp:
        rootfs = Path(tmp, "rootfs")
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             "bookworm", str(rootfs), SUITE_MIRROR],
            capture_output=True, text=True, check=False, timeout=3600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stderr[-4000:]}")
        # sshd needs its privilege-separation folder; host keys are made per container at start
        (rootfs / "run" / "sshd").mkdir(parents=True, exist_ok=True)
        for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
            key.unlink()
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        archive = Path(tmp, "rootfs.tar")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, tag = BASE_IMAGE.split(":")
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=tag,
            changes=['CMD ["/bin/sh", "-c", "ssh-keygen -A && exec /usr/sbin/sshd -D -e"]'],
        )
    return BASE_IMAGE


if __name__ == "__main__":
    print(ensure_base_image(), file=sys.stderr)
