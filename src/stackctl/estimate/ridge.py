"""Bounded least squares with a pull toward prior values, small enough to solve exactly.

The public speed fit (estimate/public_fit.py) has a handful of unknowns per backend; the
normal equations are solved by Gaussian elimination, and a bound that the free solution
breaks is fixed at the bound and the rest solved again (an active-set loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One equation: sum(coef[name] * x[name]) ~ target, with its weight."""

    coef: Mapping[str, float]
    target: float
    weight: float = 1.0


@dataclass(frozen=True)
class Prior:
    """x[name] pulled toward `value` with `weight` (as many rows' worth) at relative `scale`."""

    value: float
    weight: float
    scale: float  # the deviation that costs as much as one unit of row residual
    low: float
    high: float


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        if abs(p) < 1e-300:
            raise ValueError("singular system")
        for r in range(n):
            if r != col and m[r][col]:
                f = m[r][col] / p
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit_bounded(rows: Sequence[Row], priors: Mapping[str, Prior]) -> dict[str, float]:
    """x minimising sum(w (coef.x - target)^2) + sum(prior.weight ((x - value)/scale)^2),
    each x within [low, high]. Every name in a row needs a prior (it keeps the system
    solvable where no row informs a name)."""
    names = sorted(priors)
    fixed: dict[str, float] = {}
    while True:
        free = [n for n in names if n not in fixed]
        index = {n: i for i, n in enumerate(free)}
        ata = [[0.0] * len(free) for _ in free]
        atb = [0.0] * len(free)
        for row in rows:
            target = row.target - sum(c * fixed[n] for n, c in row.coef.items() if n in fixed)
            terms = [(index[n], c) for n, c in row.coef.items() if n in index and c]
            for i, ci in terms:
                atb[i] += row.weight * ci * target
                for j, cj in terms:
                    ata[i][j] += row.weight * ci * cj
        for n, i in index.items():
            p = priors[n]
            k = p.weight / (p.scale * p.scale)
            ata[i][i] += k
            atb[i] += k * p.value
        x = dict(zip(free, _solve(ata, atb), strict=True)) if free else {}
        broken = {n: min(max(v, priors[n].low), priors[n].high) for n, v in x.items()
                  if not priors[n].low <= v <= priors[n].high}  # fmt: skip
        if not broken:
            return {**fixed, **x}
        fixed.update(broken)
