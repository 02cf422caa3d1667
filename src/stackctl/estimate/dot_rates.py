"""CPU dot-product rates per ggml type, from llama-bench decode runs of one model in several
quant recipes (benchmarks/cpu_decode_vs_probe.py --quants; catalog/backends.yaml DOT).

A recipe mixes types (the tied output in Q6_K, attn_v / ffn_down upgrades), so a run's time
per token is fitted, per thread count, as a sum over types of weights x seconds per weight
(least squares over relative errors, estimate/ridge.py). A type whose fitted rate reads less
than a share of the probe's stream at one thread is paced by its dot product, not the memory:
its weights per second per thread are the `dot_rate_gws` speed.py takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.recipe import typed_layout
from stackctl.estimate.ridge import Prior, Row, fit_bounded

MODEL = "llama-3.2-1b"  # the model cpu_decode_vs_probe.py --quants writes in each recipe
PLAIN_LABEL = f"{MODEL} (shape-only)"  # its Q4_K_M file
PLAIN_RECIPE = "Q4_K_M"
# A type reads under this share of the probe at one thread: its dot product sets the pace (the
# memory-paced types, Q4_0/Q4_K/Q6_K/Q8_0/IQ4_NL/BF16, read 0.72-0.99 in the recorded runs).
DOT_PACED_SHARE = 0.7
_SECONDS_PER_GW = Prior(value=0.05, weight=1e-6, scale=1.0, low=1e-4, high=10.0)


@dataclass(frozen=True)
class TypeRate:
    """One ggml type's fit at one thread count."""

    gws_per_thread: float  # billions of weights per second per thread
    bytes_per_weight: float

    def read_share(self, threads: int, probe_gbps: float) -> float:
        """The memory stream this rate reads, as a share of the probe's at `threads`."""
        return self.gws_per_thread * threads * self.bytes_per_weight / probe_gbps


def recipe_of(label: str) -> str | None:
    """The quant recipe of a run row's model label, or None for another model."""
    if label == PLAIN_LABEL:
        return PLAIN_RECIPE
    prefix, suffix = f"{MODEL} ", " (shape-only)"
    if label.startswith(prefix) and label.endswith(suffix):
        return label[len(prefix) : -len(suffix)]
    return None


def recipe_mix(recipe: str, catalog: EstimateCatalog) -> tuple[dict[str, float], dict[str, float]]:
    """(weights, bytes) a token reads per ggml type: every matrix, the tied output included."""
    weights: dict[str, float] = {}
    nbytes: dict[str, float] = {}
    entry = catalog.models[MODEL]
    for t in typed_layout(entry, catalog.quants.recipes[recipe], catalog.quants):
        if len(t.shape) >= 2:
            weights[t.type] = weights.get(t.type, 0.0) + t.n_elements
            nbytes[t.type] = nbytes.get(t.type, 0.0) + t.nbytes
    return weights, nbytes


def fit_rates(
    rows: Iterable[Mapping[str, Any]], threads: int, catalog: EstimateCatalog
) -> dict[str, TypeRate]:
    """Per type, its rate over the runs' rows at `threads` (rows of other models skipped)."""
    mixes: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    equations: list[Row] = []
    totals: dict[str, list[float]] = {}
    for r in rows:
        recipe = recipe_of(str(r["model"]))
        if recipe is None or r["threads"] != threads:
            continue
        weights, nbytes = mixes.setdefault(recipe, recipe_mix(recipe, catalog))
        seconds = 1.0 / float(r["tg_tps"])
        equations.append(Row({t: w / 1e9 / seconds for t, w in weights.items()}, 1.0))
        for t, w in weights.items():
            total = totals.setdefault(t, [0.0, 0.0])
            total[0] += w
            total[1] += nbytes[t]
    seconds_per_gw = fit_bounded(equations, dict.fromkeys(totals, _SECONDS_PER_GW))
    return {t: TypeRate(1.0 / (seconds_per_gw[t] * threads), b / w)
            for t, (w, b) in totals.items()}  # fmt: skip


def dot_paced(one_thread: Mapping[str, TypeRate], probe_gbps: float) -> dict[str, float]:
    """The types a one-thread fit shows paced by their dot products, with their rates."""
    return {t: r.gws_per_thread for t, r in sorted(one_thread.items())
            if r.read_share(1, probe_gbps) < DOT_PACED_SHARE}  # fmt: skip
