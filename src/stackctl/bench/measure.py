"""`bench`: every (depth, clients) point measured several times; warm-up dropped, median kept.

An endpoint that goes down mid-run leaves the points measured so far, and the point it failed
on marked partial with the error, so that a flaky box still reports what it did.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stackctl.bench.client import EndpointError, RunResult, concurrent_run
from stackctl.bench.models import BenchPoint, PredictedPoint, Spread


@dataclass(frozen=True)
class BenchPlan:
    base_url: str
    model: str
    depths: Sequence[int]
    clients: Sequence[int]
    runs: int = 3
    warmup: int = 1
    n_gen: int = 64
    # the server's key where it listens beyond loopback (kept out of the repr)
    api_key: str | None = field(default=None, repr=False)


Progress = Callable[[int, int, str], None]
Predict = Callable[[int], PredictedPoint]


def spread(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return round((max(values) - min(values)) / mid, 4) if mid else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarise(
    depth: int, clients: int, runs: list[RunResult], error: str | None, failed: int
) -> BenchPoint:
    pp = [r.pp_tps for r in runs if r.pp_tps]
    tg = [r.tg_tps for r in runs if r.tg_tps]
    ttft = [r.ttft_s for r in runs]
    return BenchPoint(
        depth=depth,
        clients=clients,
        pp_tps=_median(pp),
        tg_tps=_median(tg),
        ttft_s=_median(ttft),
        spread=Spread(pp=spread(pp), tg=spread(tg), ttft=spread(ttft)),
        runs=len(runs),
        failed=failed,
        partial=error is not None,
        error=error,
    )


def run_bench(
    plan: BenchPlan,
    predict: Predict,
    progress: Progress = lambda _i, _n, _s: None,
) -> list[BenchPoint]:
    """Measure each point; stop at the first endpoint failure, keeping what was measured."""
    points: list[BenchPoint] = []
    total = len(plan.depths) * len(plan.clients) * (plan.runs + plan.warmup)
    step = 0
    for depth in plan.depths:
        for clients in plan.clients:
            kept: list[RunResult] = []
            error: str | None = None
            for i in range(plan.warmup + plan.runs):
                step += 1
                label = f"depth {depth}, {clients} client(s), " + (
                    "warm-up" if i < plan.warmup else f"run {i - plan.warmup + 1}/{plan.runs}"
                )
                progress(step, total, label)
                try:
                    result = concurrent_run(
                        plan.base_url, plan.model, depth, clients, plan.n_gen, seed=step,
                        api_key=plan.api_key,
                    )  # fmt: skip
                except EndpointError as exc:
                    error = f"{label}: {exc}"
                    break
                if i >= plan.warmup:
                    kept.append(result)
            point = summarise(depth, clients, kept, error, failed=1 if error else 0)
            if clients == 1:
                point = point.model_copy(update={"predicted": predict(depth)})
            points.append(point)
            if error is not None:
                return points
    return points
