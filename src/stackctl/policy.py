"""Load the resolver's data files (quality, quant degradation, runtime policy, quirks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackctl.errors import CatalogError
from stackctl.loadcache import cached_keyed, content_key
from stackctl.models.policy import Policy, QualityFile, QuantQualityFile, QuirksFile, RuntimeFile
from stackctl.yamlio import read_yaml, validate_yaml


def _load(path: Path, model: type[Any]) -> Any:
    return validate_yaml(model, read_yaml(path, error=CatalogError), path, error=CatalogError)


FILES = ("quality.yaml", "quants_quality.yaml", "quirks.yaml", "runtime.yaml")


def load_policy(root: Path) -> Policy:
    """The policy files of folder `root`, validated once per content (loadcache)."""
    key = content_key("policy", [root / name for name in FILES])
    policy = cached_keyed("policy", key, lambda: _load_policy(root), Policy)
    policy.loaded_from(key)
    return policy


def _load_policy(root: Path) -> Policy:
    return Policy(
        quality=_load(root / "quality.yaml", QualityFile),
        quants=_load(root / "quants_quality.yaml", QuantQualityFile),
        quirks=_load(root / "quirks.yaml", QuirksFile),
        runtime=_load(root / "runtime.yaml", RuntimeFile),
    )
