"""Put the lock's pinned Vulkan header .debs (Debian 13) into the test mirror, checked by sha256."""

from __future__ import annotations

from pathlib import Path

from stackctl.catalog import load_catalog
from stackctl.resources import catalog_dir
from tests.support.mirror_fill import DEFAULT_MIRROR, _download


def fill_vulkan_headers(mirror: Path = DEFAULT_MIRROR) -> list[Path]:
    engine = next(e for e in load_catalog(catalog_dir()).engines if e.name == "llama.cpp")
    assert engine.vulkan_headers is not None, "catalog/engines.yaml: no llama.cpp vulkan_headers"
    mirror.mkdir(parents=True, exist_ok=True)
    return [_download(d.url, d.sha256, mirror / d.file) for d in engine.vulkan_headers.debs]
