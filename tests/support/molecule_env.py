"""The community.docker collection that molecule's docker driver needs, without Galaxy: it is
unpacked from the `ansible` community wheel (PyPI) into a cache folder, once."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path("/var/cache/stackctl/collections")
WHEEL_SPEC = "ansible>=12,<13"  # the community package that pairs with ansible-core 2.19
PREFIX = "ansible_collections/community/docker/"


def collections_path(cache: Path = CACHE) -> Path:
    if (cache / PREFIX / "MANIFEST.json").is_file():
        return cache
    with tempfile.TemporaryDirectory(prefix="stackctl-ansible-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL_SPEC],
            check=True,
        )
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(PREFIX)]
            archive.extractall(cache, members=members)
    return cache
