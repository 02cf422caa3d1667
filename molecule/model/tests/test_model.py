"""The model role put the pinned GGUF in place, verified."""

from __future__ import annotations

import json
import os
from pathlib import Path

import testinfra.host


def test_model_file_has_the_pinned_sha256(host: testinfra.host.Host) -> None:
    data = json.loads(Path(os.environ["STACKCTL_MOLECULE_VARS"]).read_text(encoding="utf-8"))
    model = data["stackctl_model"]
    assert host.file(model["path"]).sha256sum == model["artefact"]["sha256"]
