"""The collections molecule's docker driver needs (community.docker, ansible.posix), without
Galaxy: they are unpacked from the `ansible` community wheel (PyPI) into a cache folder, once."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path("/var/cache/stackctl/collections")
WHEEL_SPEC = "ansible>=12,<13"  # the community package that pairs with ansible-core 2.19
PREFIXES = ("ansible_collections/community/docker/", "ansible_collections/ansible/posix/")


def collections_path(cache: Path = CACHE) -> Path:
    if all((cache / prefix / "MANIFEST.json").is_file() for prefix in PREFIXES):
        return cache
    with tempfile.TemporaryDirectory(prefix="stackctl-ansible-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL_SPEC],
            check=True,
        )
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(PREFIXES)]
            archive.extractall(cache, members=members)
    return cache
