"""The CPU image pins its whole apt install closure: the named packages and every dependency
apt adds on the base, each by version, as the lock records them (catalog/images.yaml)."""

from __future__ import annotations

import re

from stackctl.image.build import toolchain_tag
from stackctl.lock import read_lockfile
from tests.support.render_cases import BY_NAME, GOLDEN

INSTALL = re.compile(r"apt-get install -y --no-install-recommends (.+?) \\")


def installed_by(containerfile: str) -> list[dict[str, str]]:
    """name -> version of each `apt-get install` line (build stage first, then run)."""
    lines = INSTALL.findall(containerfile)
    return [dict(word.strip("'").split("=", 1) for word in line.split()) for line in lines]


def test_every_package_the_cpu_image_installs_is_pinned() -> None:
    case = BY_NAME["cpu-x86"]
    pins = read_lockfile(case.lock_path).resolved.image
    assert pins is not None
    assert pins.key == "cpu"
    build, run = installed_by((GOLDEN / case.name / "Containerfile").read_text())
    assert build == pins.build_install
    assert run == pins.run_install
    # the compilers themselves come in as dependencies of build-essential, pinned
    assert build["gcc-12"]
    assert build["libc6-dev"]
    assert run["libcurl4"]
    assert len(pins.build_dependencies) > 50
    assert not set(pins.build_dependencies) & set(pins.build_packages)


def test_the_toolchain_image_is_keyed_by_its_dependencies_too() -> None:
    pins = read_lockfile(BY_NAME["cpu-x86"].lock_path).resolved.image
    assert pins is not None
    moved = pins.model_copy(
        update={"build_dependencies": {**pins.build_dependencies, "libc6-dev": "2.36-9+deb12u99"}}
    )
    assert toolchain_tag(pins, "sha256:" + "0" * 64) != toolchain_tag(moved, "sha256:" + "0" * 64)
