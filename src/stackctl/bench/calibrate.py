"""`calibrate`: per-(hardware, backend, engine) efficiency factors fitted on stored results.

A factor is the median of measured / predicted over a group's rows, for decode and prefill
apart: the roofline's efficiency scaled to what that box reaches. Within a group, this box's
own measurements win over imported ones (imported rows count only where the box measured
nothing). Plans read the factors back with `plan_feedback`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field

from stackctl.bench.models import BenchRow, StoredResult, TestKind
from stackctl.bench.store import data_dir
from stackctl.errors import InputError
from stackctl.fsio import write_text_atomic
from stackctl.models.base import StrictModel
from stackctl.quoting import to_yaml
from stackctl.yamlio import read_yaml, validate_yaml

GroupKey = tuple[str, str, str, TestKind]


class Factor(StrictModel):
    hardware: str
    backend: str
    engine: str
    test: TestKind
    factor: float = Field(description="median measured / predicted")
    spread: tuple[float, float] = Field(description="lowest and highest ratio seen")
    n: int
    first: str
    last: str
    origin: Literal["this box", "imported"]

    @property
    def basis(self) -> str:
        return (
            f"calibrated from {self.n} measurement(s) ({self.first[:10]} to {self.last[:10]}, "
            f"{self.origin}): x{self.factor:.2f} on the public-fit {self.test} figure"
        )


class Calibration(StrictModel):
    version: Literal[1] = 1
    factors: list[Factor]
    skipped: list[str] = Field(default_factory=list)


def calibration_path() -> Path:
    return data_dir() / "calibration.yaml"


def _sig(value: float) -> float:
    """4 significant figures: a factor is a ratio of noisy figures, not a precise constant."""
    return float(f"{value:.4g}")


RowPredictor = Callable[[BenchRow], float | None]


def fit(results: Iterable[StoredResult], predict_row: RowPredictor) -> Calibration:
    groups: dict[GroupKey, list[tuple[StoredResult, float]]] = defaultdict(list)
    skipped: list[str] = []
    for r in results:
        key = r.row.hardware.key
        predicted = r.predicted_tps if r.predicted_tps else predict_row(r.row)
        if key is None or not predicted or r.partial or r.clients != 1:
            why = "partial" if r.partial else "concurrent" if r.clients != 1 else "no prediction"
            skipped.append(f"{r.row.source} {r.row.model_name or r.row.model} {r.row.test}: {why}")
            continue
        groups[(key, r.row.backend, r.engine, r.row.test)].append((r, r.row.tps / predicted))
    factors = []
    for (hardware, backend, engine, test), members in sorted(groups.items()):
        own = [(r, x) for r, x in members if r.kind == "measured"]
        used = own or members
        ratios = [x for _r, x in used]
        dates = sorted(r.date for r, _x in used)
        factors.append(
            Factor(
                hardware=hardware,
                backend=backend,
                engine=engine,
                test=test,
                factor=_sig(statistics.median(ratios)),
                spread=(_sig(min(ratios)), _sig(max(ratios))),
                n=len(used),
                first=dates[0],
                last=dates[-1],
                origin="this box" if own else "imported",
            )
        )
    return Calibration(factors=factors, skipped=skipped)


def write_calibration(calibration: Calibration, path: Path | None = None) -> Path:
    path = path or calibration_path()
    write_text_atomic(path, to_yaml(calibration.model_dump(mode="json")))
    return path


def read_calibration(path: Path | None = None) -> Calibration | None:
    path = path or calibration_path()
    if not path.is_file():
        return None
    return validate_yaml(Calibration, read_yaml(path, error=InputError), path, error=InputError)


def find_factor(
    calibration: Calibration, keys: Iterable[str | None], backend: str, engine: str, test: str
) -> Factor | None:
    for key in keys:
        for f in calibration.factors:
            if (f.hardware, f.backend, f.engine, f.test) == (key, backend, engine, test):
                return f
    return None
