"""Put the lock's pinned Vulkan header .debs (Debian 13) into the test mirror, checked by sha256."""

from __future__ import annotations

from pathlib import Path

from stackctl.catalog import load_catalog
from stackctl.mirror_fill import fill
from stackctl.models.resolved import ArtefactPin
from stackctl.resources import catalog_dir
from tests.support.mirror_fill import DEFAULT_MIRROR


def fill_vulkan_headers(mirror: Path = DEFAULT_MIRROR) -> list[Path]:
    engine = next(e for e in load_catalog(catalog_dir()).engines if e.name == "llama.cpp")
    assert engine.vulkan_headers is not None, "catalog/engines.yaml: no llama.cpp vulkan_headers"
    pins = [
        ArtefactPin(url=d.url, file=d.file, sha256=d.sha256, size=None, verified=True,
                    origin="Debian 13 archive")
        for d in engine.vulkan_headers.debs
    ]  # fmt: skip
    fill(mirror, pins)
    return [mirror / pin.file for pin in pins]
