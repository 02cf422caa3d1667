"""Load the catalog (engine builds, model artefacts) that the resolver chooses from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stackctl.errors import CatalogError
from stackctl.loadcache import cached_load
from stackctl.models.catalog import Catalog, EngineEntry, ImageSet, MlxRules, ModelArtefact
from stackctl.yamlio import read_yaml, validate_yaml


class EnginesFile(BaseModel):
    model_config = {"extra": "forbid", "defer_build": True}
    engines: list[EngineEntry]


class _ImagesFile(BaseModel):
    model_config = {"extra": "forbid", "defer_build": True}
    schema_version: int
    images: dict[str, ImageSet]


class _ArtefactsFile(BaseModel):
    model_config = {"extra": "forbid", "defer_build": True}
    sources: dict[str, str] = {}  # source id -> the public listing it names (cited by entries)
    artefacts: list[ModelArtefact]


def catalog_sha256(root: Path) -> str:
    """One hash over every catalog file, so a lock can tell that the catalog changed."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.yaml")):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def mlx_rules(path: Path) -> MlxRules | None:
    """The mlx-lm entry's rules in the engines file `path` (catalog/engines.yaml), if any."""
    engines: EnginesFile = _load(path, EnginesFile)
    return next((e.mlx for e in engines.engines if e.mlx is not None), None)


def _load(path: Path, model: type[Any]) -> Any:
    data = read_yaml(path, error=CatalogError)
    return validate_yaml(model, data, path, error=CatalogError)


def load_catalog(root: Path) -> Catalog:
    """The catalog of folder `root`, validated once per content of its files (loadcache)."""
    files = sorted(root.glob("*.yaml"))  # the files `sha256` covers
    return cached_load("catalog", files, lambda: _load_catalog(root), Catalog)


def _load_catalog(root: Path) -> Catalog:
    engines: EnginesFile = _load(root / "engines.yaml", EnginesFile)
    artefacts: _ArtefactsFile = _load(root / "artefacts.yaml", _ArtefactsFile)
    images: _ImagesFile = _load(root / "images.yaml", _ImagesFile)
    return Catalog(
        engines=engines.engines,
        artefacts=artefacts.artefacts,
        images=images.images,
        sha256=catalog_sha256(root),
    )


def find_artefact(catalog: Catalog, model: str, quant: str | None) -> ModelArtefact | None:
    for artefact in catalog.artefacts:
        if artefact.model == model and (quant is None or artefact.quant == quant):
            return artefact
    return None
