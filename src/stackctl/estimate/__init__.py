"""Honest memory and speed estimates for llama.cpp stacks.

Public API:
    estimate(request, hardware, *, catalog=None) -> Estimate
    lookup_model(name, catalog=None) -> catalog id (aliases accepted)
    load_estimate_catalog(root) -> EstimateCatalog (models, quants, backends)

Without `catalog=`, the catalogs are read from `stackctl.resources.catalog_dir()` on each call.
"""

from __future__ import annotations

from stackctl.estimate import catalog as _catalog
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.estimate.core import estimate
from stackctl.resources import catalog_dir


def lookup_model(name: str, catalog: EstimateCatalog | None = None) -> str:
    """The catalog id for a model id or a name people use ('qwen3:30b-a3b')."""
    return _catalog.lookup_model(name, catalog or load_estimate_catalog(catalog_dir()))


load_model_catalog = load_estimate_catalog

__all__ = [
    "EstimateCatalog",
    "estimate",
    "load_estimate_catalog",
    "load_model_catalog",
    "lookup_model",
]
