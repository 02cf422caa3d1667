"""The engine role installed the pinned llama.cpp build."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import testinfra.host


def _vars() -> Any:
    return json.loads(Path(os.environ["STACKCTL_MOLECULE_VARS"]).read_text(encoding="utf-8"))


def test_pinned_server_binary_is_installed(host: testinfra.host.Host) -> None:
    engine = _vars()["stackctl_engine"]
    binary = host.file(engine["server_binary"])
    assert binary.exists
    assert binary.mode & 0o111
    version = host.run(f"{engine['server_binary']} --version")
    assert f"(build {engine['build_number']}," in version.stderr + version.stdout


def test_source_archive_is_the_pinned_one(host: testinfra.host.Host) -> None:
    data = _vars()
    source = data["stackctl_engine"]["source"]
    archive = host.file(f"{data['stackctl_layout']['cache_dir']}/src/{source['file']}")
    assert archive.sha256sum == source["sha256"]
