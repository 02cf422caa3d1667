"""Measured figures back into plans, in order: this box's measurements, the user's
calibration, then the public-fit factors the estimator ships with."""

from __future__ import annotations

import math
from typing import Any

from stackctl.bench.calibrate import Calibration, Factor, find_factor, read_calibration
from stackctl.bench.models import StoredResult
from stackctl.bench.store import all_results, default_store_path, open_store
from stackctl.models.hardware import HardwareProfile
from stackctl.models.resolved import Prediction, ResolvedStack

MARGIN = 0.15  # calibrated range: the ratios seen, widened for conditions not measured


def _scaled(
    value: float, f: Factor, ceiling: float | None
) -> tuple[float, tuple[float, float], bool]:
    """(figure, range, capped?): `value` x the factor, its range the ratios seen widened by
    MARGIN, all of it under the physics `ceiling` a box cannot pass whatever it measured."""
    top = ceiling or math.inf
    low, high = f.spread
    figure = min(value * f.factor, top)
    rng = (min(value * low * (1 - MARGIN), figure), min(value * high * (1 + MARGIN), top))
    capped = value * high * (1 + MARGIN) > top
    return round(figure, 2), (round(rng[0], 2), round(rng[1], 2)), capped


def _capped(ceiling: float | None, unit: str) -> str:
    return f", held under the physics ceiling {ceiling:g} {unit}" if ceiling else ""


def calibrated_prediction(p: Prediction, tg: Factor | None, pp: Factor | None) -> Prediction:
    update: dict[str, Any] = {}
    basis = list(p.basis)
    if tg is not None:
        update["tg_tps"], update["tg_tps_range"], cap = _scaled(p.tg_tps, tg, p.tg_tps_ceiling)
        note = _capped(p.tg_tps_ceiling, "tok/s (bandwidth / bytes per token)") if cap else ""
        basis.append(f"decode {tg.basis} ({p.tg_tps:.1f} tok/s before{note})")
    if pp is not None:
        update["pp_tps"], update["pp_tps_range"], cap = _scaled(p.pp_tps, pp, p.pp_tps_ceiling)
        note = _capped(p.pp_tps_ceiling, "tok/s (peak compute / ops per token)") if cap else ""
        basis.append(f"prefill {pp.basis} ({p.pp_tps:.0f} tok/s before{note})")
    return p.model_copy(update={**update, "basis": basis})


def _keys(hardware: HardwareProfile) -> list[str | None]:
    gpu = hardware.accelerators[0].name if hardware.accelerators else None
    return [hardware.name, gpu, hardware.cpu.model]


def measured_here(resolved: ResolvedStack, results: list[StoredResult]) -> dict[str, Any] | None:
    """This box's latest measurement of the same model, quant and backend (one client)."""
    r = resolved
    mine = [
        s
        for s in results
        if s.kind == "measured"
        and s.clients == 1
        and not s.partial
        and s.row.hardware.system == r.hardware
        and s.row.model == r.model.id
        and s.row.quant == r.model.quant
        and s.row.backend == r.engine.backend
    ]
    if not mine:
        return None
    latest = max(s.date for s in mine)
    last = [s for s in mine if s.date == latest]
    out: dict[str, Any] = {"date": latest, "lock_hash": last[0].lock_hash}
    for test in ("tg", "pp"):
        rows = sorted((s for s in last if s.row.test == test), key=lambda s: s.row.depth)
        if rows:
            out[f"{test}_tps"] = rows[0].row.tps
            out[f"{test}_depth"] = rows[0].row.depth if test == "tg" else rows[0].row.n_prompt
    return out


def _stored() -> list[StoredResult]:
    path = default_store_path()
    if not path.is_file():
        return []
    with open_store(path) as conn:
        return all_results(conn)


def plan_feedback(
    resolved: ResolvedStack,
    hardware: HardwareProfile,
    calibration: Calibration | None = None,
    results: list[StoredResult] | None = None,
) -> tuple[ResolvedStack, dict[str, Any]]:
    """The plan with calibrated figures, and what was measured on this box beside them."""
    calibration = calibration if calibration is not None else read_calibration()
    results = results if results is not None else _stored()
    extra: dict[str, Any] = {"measured": measured_here(resolved, results), "calibration": None}
    if calibration is None:
        return resolved, extra
    e = resolved.engine
    tg = find_factor(calibration, _keys(hardware), e.backend, e.name, "tg")
    pp = find_factor(calibration, _keys(hardware), e.backend, e.name, "pp")
    if tg is None and pp is None:
        return resolved, extra
    # a CPU decode factor is held at the host figure it was measured against
    tg = tg.at_host(hardware.cpu.bandwidth_gbps) if tg is not None else None
    extra["calibration"] = {
        "uncalibrated": {"tg_tps": resolved.predicted.tg_tps, "pp_tps": resolved.predicted.pp_tps},
        "factors": [f.model_dump(mode="json") for f in (tg, pp) if f is not None],
    }
    predicted = calibrated_prediction(resolved.predicted, tg, pp)
    extra["calibration"]["calibrated"] = {"tg_tps": predicted.tg_tps, "pp_tps": predicted.pp_tps}
    return resolved.model_copy(update={"predicted": predicted}), extra


def feedback_lines(extra: dict[str, Any]) -> list[str]:
    lines = []
    cal = extra.get("calibration")
    if cal:
        before, after = cal["uncalibrated"], cal["calibrated"]
        lines.append(
            f"calibration: decode {before['tg_tps']:.1f} -> {after['tg_tps']:.1f} tok/s, "
            f"prefill {before['pp_tps']:.0f} -> {after['pp_tps']:.0f} tok/s "
            "(public fit -> `stackctl calibrate`)"
        )
    measured = extra.get("measured")
    if measured:
        parts = [f"decode {measured['tg_tps']:.1f} tok/s"] if "tg_tps" in measured else []
        if "pp_tps" in measured:
            parts.append(f"prefill {measured['pp_tps']:.0f} tok/s")
        lines.append(f"measured on this box ({measured['date'][:10]}): {', '.join(parts)}")
    return lines
