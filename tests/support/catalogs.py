"""Estimate catalogs with one piece of knowledge taken out, to show what it changes."""

from __future__ import annotations

from stackctl.estimate.catalog import BackendFactors, EstimateCatalog


def without_dot_rates(catalog: EstimateCatalog) -> EstimateCatalog:
    """The catalog with no CPU dot-product rates: every weight type paced by the memory."""
    cpu = catalog.backends.backends["cpu"]
    plain = BackendFactors.model_validate({**cpu.model_dump(), "dot_rate_gws": {}})
    backends = catalog.backends.model_copy(
        update={"backends": {**catalog.backends.backends, "cpu": plain}}
    )
    return catalog.model_copy(update={"backends": backends})
