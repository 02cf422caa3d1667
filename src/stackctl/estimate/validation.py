"""How far held-out public rows fell from the prediction, per GPU backend: the spread a range
must cover to be honest.

The efficiency ranges of catalog/backends.yaml were set by hand; on the public llama-bench rows
(benchmarks/speed_vs_public.py), a source left out of the fit landed inside its predicted range
for 75 % of decode rows and 61 % of prefill rows (550 rows, 32 sources). The 10th and 90th
percentiles of measured / predicted over those held-out rows are kept per backend
(catalog/speed_fit.yaml, written by `--write-fit`), and a prediction's range is widened to its
figure times them where it is narrower: each source checked against the spread of the others'
held-out rows, 83 % of decode and 77 % of prefill rows then fall inside. The CPU keeps its own
ranges (this project's runs, and a probe-measured bandwidth narrows them).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackctl.estimate.public_fit import Scored

# (10th, 90th) percentile: the range should hold about 8 in 10 measurements
DECILES = (0, 8)  # indexes into statistics.quantiles(n=10)
# A backend with fewer held-out rows than this takes the spread of all GPU rows pooled.
MIN_ROWS = 20
POOLED = "gpu"

Ratio = tuple[str, str, float]  # (backend, test "tg"/"pp", measured / predicted)


def deciles(ratios: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ratios, n=10, method="inclusive")
    return round(q[DECILES[0]], 3), round(q[DECILES[1]], 3)


def spreads(ratios: Iterable[Ratio]) -> dict[str, dict[str, tuple[float, float]]]:
    """backend -> test -> (low, high) multipliers of the prediction; "gpu" pools every GPU
    backend, and a backend with fewer than MIN_ROWS rows of a test takes the pooled figure."""
    by: dict[tuple[str, str], list[float]] = {}
    for backend, test, ratio in ratios:
        if backend == "cpu" or ratio <= 0:
            continue
        by.setdefault((backend, test), []).append(ratio)
        by.setdefault((POOLED, test), []).append(ratio)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for (backend, test), values in sorted(by.items()):
        pooled = by[(POOLED, test)]
        chosen = values if len(values) >= MIN_ROWS else pooled
        if len(chosen) >= 2:
            out.setdefault(backend, {})[test] = deciles(chosen)
    return out


def validation_fields(
    spread: Mapping[str, Mapping[str, tuple[float, float]]], name: str
) -> dict[str, tuple[float, float]]:
    """The speed_fit.yaml fields of backend key `name` (cuda-nvidia: cuda's spread)."""
    own = spread.get(name.split("-")[0]) or spread.get(POOLED, {})
    fields = {"decode_validation": own.get("tg"), "prefill_validation": own.get("pp")}
    return {k: v for k, v in fields.items() if v is not None}


def widen(
    mid: float, ends: tuple[float, float], spread: tuple[float, float] | None, ceiling: float
) -> tuple[float, float]:
    """`ends` widened to at least `mid` x `spread`, the top never above the physics `ceiling`."""
    if spread is None or mid <= 0:
        return ends
    low = min(ends[0], mid * spread[0])
    high = max(ends[1], mid * spread[1])
    return low, min(high, ceiling) if ceiling > 0 else high


def ratios(scored: Iterable[Scored]) -> list[Ratio]:
    """(backend, test, measured / predicted) per scored public row: the spread's input."""
    return [(s.case.backend, s.case.test, s.case.measured / s.predicted) for s in scored
            if s.predicted > 0]  # fmt: skip


def range_coverage(loso: list[Scored], test: str, widened: bool = True) -> tuple[int, int]:
    """(rows, rows inside the held-out range): each row's range from factors fitted without its
    source, widened (GPU rows) by the spread of the other sources' held-out rows, as a shipped
    range is by the spread of all of them."""
    n = inside = 0
    for source in sorted({s.case.source for s in loso}):
        spread = spreads(ratios([s for s in loso if s.case.source != source]))
        for s in loso:
            if s.case.source != source or s.case.test != test:
                continue
            low, high = s.low, s.high
            if widened and s.case.backend != "cpu":
                lo, hi = (spread.get(s.case.backend) or spread[POOLED])[test]
                low, high = min(low, s.predicted * lo), max(high, s.predicted * hi)
            n += 1
            inside += low <= s.case.measured <= high
    return n, inside
