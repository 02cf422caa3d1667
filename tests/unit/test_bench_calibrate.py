"""calibrate and the plan's feedback on a recorded bench run (tests/data/bench/stored-*.jsonl):
factors are median measured / predicted, this box's rows beat imported ones, and a plan's
prediction moves onto the calibrated figure with its basis."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from stackctl.bench.calibrate import fit
from stackctl.bench.feedback import plan_feedback
from stackctl.bench.models import BenchRow, StoredResult
from stackctl.catalog import load_catalog
from stackctl.resolve import resolve_stack
from stackctl.resources import catalog_dir
from stackctl.spec import load_profile, load_stack, stack_path

DATA = Path(__file__).resolve().parent.parent / "data" / "bench"


def _recorded() -> list[StoredResult]:
    return [
        StoredResult.model_validate_json(line)
        for line in (DATA / "stored-dev-run.jsonl").read_text().splitlines()
    ]


def _no_prediction(_row: BenchRow) -> float | None:
    return None


def test_factor_is_the_median_ratio_of_single_client_rows() -> None:
    results = _recorded()
    calibration = fit(results, _no_prediction)
    tg = next(f for f in calibration.factors if f.test == "tg")
    ratios = [
        r.row.tps / r.predicted_tps
        for r in results
        if r.row.test == "tg" and r.clients == 1 and r.predicted_tps
    ]
    assert tg.factor == pytest.approx(statistics.median(ratios), rel=1e-3)
    assert tg.n == len(ratios)
    assert tg.origin == "this box"
    assert any("concurrent" in s for s in calibration.skipped)


def test_imported_rows_count_only_where_the_box_measured_nothing() -> None:
    own = _recorded()
    imported = [
        r.model_copy(
            update={"kind": "imported", "row": r.row.model_copy(update={"tps": r.row.tps * 10})}
        )
        for r in own
    ]
    tg = next(f for f in fit([*own, *imported], _no_prediction).factors if f.test == "tg")
    assert tg.origin == "this box"
    alone = next(f for f in fit(imported, _no_prediction).factors if f.test == "tg")
    assert alone.origin == "imported"
    assert alone.factor == pytest.approx(tg.factor * 10, rel=1e-3)


def test_plan_takes_the_calibrated_figure_and_shows_the_measured_one(cpu_profile: Path) -> None:
    results = _recorded()
    resolved = resolve_stack(
        load_stack(stack_path("tiny-cpu")), load_profile(cpu_profile), load_catalog(catalog_dir())
    )
    calibration = fit(results, _no_prediction)
    planned, extra = plan_feedback(resolved, load_profile(cpu_profile), calibration, results)
    tg = next(f for f in calibration.factors if f.test == "tg")
    assert planned.predicted.tg_tps == pytest.approx(resolved.predicted.tg_tps * tg.factor, 0.01)
    assert any(b.startswith("decode calibrated from") for b in planned.predicted.basis)
    measured = extra["measured"]["tg_tps"]
    before, after = resolved.predicted.tg_tps, planned.predicted.tg_tps
    assert abs(after - measured) < abs(before - measured)
    untouched, none = plan_feedback(resolved, load_profile(cpu_profile), None, [])
    assert untouched.predicted == resolved.predicted
    assert none["measured"] is None
