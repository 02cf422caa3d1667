"""The CPU Containerfile built for real with buildah (chroot isolation, vfs storage).

This machine cannot pull from registries, so the test builds the base image itself with
debootstrap and tags it as the Containerfile's base; buildah's storage keeps it (and the build's
layers) between runs, so only the first run pays for debootstrap and the llama-server compile.
GPU Containerfiles are only linted (test_render_tools.py): no GPU base image or daemon here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stackctl.render import make_environment, render_stack, write_tree
from stackctl.resources import roles_dir, templates_dir
from tests.support.mirror_fill import DEFAULT_MIRROR, fill_mirror
from tests.support.render_cases import BY_NAME, golden_lock

pytestmark = pytest.mark.image

STORAGE = Path(os.environ.get("STACKCTL_BUILDAH_ROOT", "/var/cache/stackctl/buildah"))
BASE = "docker.io/library/debian:bookworm-slim"
SUITE_MIRROR = "http://deb.debian.org/debian"


def buildah(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    argv = ["buildah", "--storage-driver", "vfs", "--root", str(STORAGE / "root"),
            "--runroot", str(STORAGE / "run"), *args]  # fmt: skip
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ensure_base_image() -> None:
    """debootstrap a minimal bookworm and import it as BASE, once."""
    if buildah("inspect", "--type", "image", BASE).returncode == 0:
        return
    rootfs = STORAGE / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), SUITE_MIRROR],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    container = buildah("from", "scratch").stdout.strip()
    mount = buildah("mount", container).stdout.strip()
    subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True)
    buildah("umount", container)
    made = buildah("commit", container, BASE)
    buildah("rm", container)
    shutil.rmtree(rootfs, ignore_errors=True)
    assert made.returncode == 0, made.stderr


@pytest.mark.skipif(
    not (shutil.which("buildah") and shutil.which("debootstrap")) or os.geteuid() != 0,
    reason="needs root, buildah and debootstrap (scripts/bootstrap.sh installs them)",
)
def test_cpu_containerfile_builds_and_serves_the_pinned_build(tmp_path: Path) -> None:
    STORAGE.mkdir(parents=True, exist_ok=True)
    ensure_base_image()
    lock = golden_lock(BY_NAME["cpu-x86"])
    context = tmp_path / "context"
    files = render_stack(
        lock, make_environment(templates_dir()), roles=roles_dir(), lock_name="lockfiles/cpu-x86"
    )
    write_tree(files, context)
    mirror = fill_mirror(DEFAULT_MIRROR)
    for pin in (lock.resolved.engine.source, lock.resolved.model.artefact):
        shutil.copy(mirror / pin.file, context / pin.file)
    image = f"localhost/stackctl-test-cpu:{lock.resolved.engine.build_key}"
    built = buildah(
        "bud", "--isolation", "chroot", "--layers", "--pull=never", "-t", image,
        "-f", "Containerfile", str(context),
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-4000:]
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)
    entrypoint = config["OCIv1"]["config"]["Entrypoint"]
    assert entrypoint[:3] == [
        "/usr/local/bin/llama-server",
        "--model",
        f"/models/{lock.resolved.model.artefact.file}",
    ]
    assert config["OCIv1"]["config"]["User"] == "10001"
    container = buildah("from", "--pull=never", image).stdout.strip()
    try:
        version = buildah("run", "--isolation", "chroot", container, "--",
                          "/usr/local/bin/llama-server", "--version")  # fmt: skip
        assert f"(build {lock.resolved.engine.build_number}," in version.stdout + version.stderr
    finally:
        buildah("rm", container)
