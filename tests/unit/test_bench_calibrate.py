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


def _at_host(results: list[StoredResult], gbps: float, date: str) -> list[StoredResult]:
    """The recorded rows as if their predictions took a `gbps` host figure (2x the figure, 2x
    the CPU decode prediction: the roofline's weight read), the measurements unchanged."""
    out = []
    for r in results:
        scale = gbps / 20.0 if r.row.test == "tg" else 1.0
        predicted = r.predicted_tps * scale if r.predicted_tps else None
        out.append(
            r.model_copy(update={"host_gbps": gbps, "predicted_tps": predicted, "date": date})
        )
    return out


def test_a_cpu_decode_factor_is_held_at_one_host_figure() -> None:
    """Runs taken under two probe figures (a VM's 31-56 GB/s): each decode ratio is rebased to
    the latest run's figure, so the factor is the one ratio the box shows, not their median."""
    recorded = _recorded()
    old = _at_host(recorded, 20.0, "2026-12-01T00:00:00+00:00")
    new = _at_host(recorded, 40.0, "2026-12-02T00:00:00+00:00")
    tg = next(f for f in fit([*old, *new], _no_prediction).factors if f.test == "tg")
    alone = next(f for f in fit(new, _no_prediction).factors if f.test == "tg")
    assert tg.host_gbps == 40.0
    assert tg.factor == pytest.approx(alone.factor, rel=1e-3)
    pp = next(f for f in fit([*old, *new], _no_prediction).factors if f.test == "pp")
    assert pp.host_gbps is None  # prefill is compute-bound: no host figure to hold
    mixed = next(f for f in fit([*recorded, *new], _no_prediction).factors if f.test == "tg")
    assert (mixed.host_gbps, mixed.n) == (40.0, alone.n)  # rows without a figure drop out
    legacy = next(f for f in fit(recorded, _no_prediction).factors if f.test == "tg")
    assert legacy.host_gbps is None  # rows from before host_gbps: as they were
    assert legacy.at_host(55.0) == legacy
    assert tg.at_host(20.0).factor == pytest.approx(tg.factor * 2, rel=1e-3)
    assert tg.at_host(40.0) == tg


def test_a_new_probe_figure_leaves_the_calibrated_decode_where_it_was(cpu_profile: Path) -> None:
    """A plan after a re-probe that read twice the bandwidth predicts twice the decode before
    calibration; calibrated, it stays at the figure the box measured (this was x0.5 off)."""
    results = _at_host(_recorded(), 20.0, "2026-12-01T00:00:00+00:00")
    calibration = fit(results, _no_prediction)
    catalog = load_catalog(catalog_dir())
    stack = load_stack(stack_path("tiny-cpu"))
    figures = {}
    for gbps in (20.0, 40.0):
        base = load_profile(cpu_profile)
        cpu = base.cpu.model_copy(update={"bandwidth_gbps": gbps, "bandwidth_source": "measured"})
        profile = base.model_copy(update={"cpu": cpu})
        resolved = resolve_stack(stack, profile, catalog)
        planned, _extra = plan_feedback(resolved, profile, calibration, results)
        figures[gbps] = (resolved.predicted.tg_tps, planned.predicted.tg_tps)
    (raw20, cal20), (raw40, cal40) = figures[20.0], figures[40.0]
    assert raw40 > raw20 * 1.5  # the uncalibrated figure follows the probe
    assert cal40 == pytest.approx(cal20, rel=0.1)  # the calibrated one holds


def test_a_calibrated_figure_never_passes_the_physics_ceiling(cpu_profile: Path) -> None:
    """Rows that measured 3x the prediction (a faster box's, imported) would lift the plan's
    decode and prefill past bandwidth / bytes per token and peak / ops per token: the lock's
    ceilings hold the figures and their ranges, and the basis says where they were held."""
    fast = [
        r.model_copy(update={"row": r.row.model_copy(update={"tps": r.predicted_tps * 3})})
        for r in _recorded()
        if r.predicted_tps
    ]
    profile = load_profile(cpu_profile)
    resolved = resolve_stack(
        load_stack(stack_path("tiny-cpu")), profile, load_catalog(catalog_dir())
    )
    before = resolved.predicted
    assert before.tg_tps_ceiling
    assert before.pp_tps_ceiling
    assert before.tg_tps_range[1] <= before.tg_tps_ceiling
    assert before.pp_tps_range[1] <= before.pp_tps_ceiling
    calibration = fit(fast, _no_prediction)
    tg = next(f for f in calibration.factors if f.test == "tg")
    assert before.tg_tps * tg.spread[1] * 1.15 > before.tg_tps_ceiling  # would pass it
    after = plan_feedback(resolved, profile, calibration, fast)[0].predicted
    assert after.tg_tps <= before.tg_tps_ceiling
    assert after.tg_tps_range[1] == pytest.approx(before.tg_tps_ceiling, abs=0.01)
    assert after.pp_tps_range[1] <= before.pp_tps_ceiling
    held = [b for b in after.basis if "held under the physics ceiling" in b]
    assert held
    assert held[0].startswith("decode calibrated from")
