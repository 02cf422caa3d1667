"""`calibrate`: per-(hardware, backend, engine) efficiency factors fitted on stored results.

A factor is the median of measured / predicted over a group's rows, for decode and prefill
apart: the roofline's efficiency scaled to what that box reaches. Within a group, this box's
own measurements win over imported ones (imported rows count only where the box measured
nothing). Plans read the factors back with `plan_feedback`.

A CPU's decode prediction is proportional to the host bandwidth it takes, and a probed figure
moves between probes (a VM's vCPUs share a core or not: 31-56 GB/s on one 2-vCPU EPYC guest,
whose llama.cpp decode stayed at 73-83 tok/s). So such a factor is held at one host figure
(`host_gbps`: each ratio rebased to it) and a plan whose profile has another one rescales it
(`at_host`): the calibrated figure stays what the box measured, whatever the probe says now.
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
    host_gbps: float | None = Field(
        None, description="the host bandwidth its ratios are taken at (CPU decode only)"
    )
    rebased_from: float | None = Field(
        None, description="at_host: the factor at host_gbps, before this profile's figure"
    )

    @property
    def basis(self) -> str:
        text = (
            f"calibrated from {self.n} measurement(s) ({self.first[:10]} to {self.last[:10]}, "
            f"{self.origin}): x{self.factor:.2f} on the public-fit {self.test} figure"
        )
        if self.rebased_from is not None and self.host_gbps:
            text += (
                f" (x{self.rebased_from:.2f} measured against a {self.host_gbps:g} GB/s host "
                "figure, rescaled to this profile's)"
            )
        return text

    def at_host(self, host_gbps: float | None) -> Factor:
        """The factor for a prediction that took `host_gbps`: a CPU decode prediction scales
        with its host figure, so the factor scales inversely and the calibrated figure holds."""
        if not self.host_gbps or not host_gbps or host_gbps == self.host_gbps:
            return self
        scale = self.host_gbps / host_gbps
        return self.model_copy(
            update={
                "factor": _sig(self.factor * scale),
                "spread": (_sig(self.spread[0] * scale), _sig(self.spread[1] * scale)),
                "rebased_from": self.factor,
            }
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


def _rebased(
    used: list[tuple[StoredResult, float]],
) -> tuple[list[tuple[StoredResult, float]], float | None]:
    """A CPU decode group's rows and ratios at one host figure (the latest row's): only the
    rows that recorded theirs count (older rows did not); if none did, the ratios stay as
    they are, with no host figure."""
    known = [(r, x, r.host_gbps) for r, x in used if r.host_gbps]
    if not known:
        return used, None
    latest = max(known, key=lambda rxh: rxh[0].date)[2]
    return [(r, x * host / latest) for r, x, host in known], latest


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
        used, host = (own or members), None
        if backend == "cpu" and test == "tg":  # its prediction scales with the host figure
            used, host = _rebased(used)
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
                host_gbps=host,
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
