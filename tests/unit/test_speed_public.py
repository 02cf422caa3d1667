"""The public llama-bench rows against the estimator: coverage, the leave-one-source-out
medians, and the committed fit (catalog/speed_fit.yaml) reproduced from the committed data.

The issue's targets are decode <= 10 % and prefill <= 20 % (LOSO medians). The bounds below are
what the estimator reaches today (benchmarks/speed_vs_public.py prints the table): they keep it
from getting worse and are to be tightened toward the targets, not loosened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.estimate.catalog import FittedFactors, load_estimate_catalog
from stackctl.estimate.public_fit import (
    Case,
    fit,
    fitted_fields,
    fitted_names,
    leave_one_source_out,
    load_cases,
    summary,
)
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "tests/data/speed/public_llama_bench.yaml"
HARDWARE = ROOT / "tests/data/estimate/public_hardware.yaml"
# Every factor is now fitted from the training rows alone (no hand-set figure that came from a
# held-out source's box): decode rose from a leaky 15.1 % to an honest 16.4 %, prefill fell from
# 29.2 % to 27.2 % (tiles of routed-expert matmuls, Strix Halo's matrix peak).
LOSO_DECODE_MEDIAN = 0.165  # target 0.10
LOSO_PREFILL_MEDIAN = 0.28  # target 0.20


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    catalog = load_estimate_catalog(catalog_dir(), fitted=False)
    found, missed = load_cases(ROWS, HARDWARE, catalog)
    assert missed == []  # coverage 100 %
    return found


def test_enough_rows_and_hardware(cases: list[Case]) -> None:
    assert len(cases) >= 150
    assert len({c.family for c in cases}) >= 8
    for c in cases:
        assert c.measured > 0


def test_leave_one_source_out_medians(cases: list[Case]) -> None:
    base = load_estimate_catalog(catalog_dir(), fitted=False).backends
    loso = leave_one_source_out(cases, base)
    _, decode, _ = summary(loso, "tg")
    _, prefill, _ = summary(loso, "pp")
    assert decode <= LOSO_DECODE_MEDIAN
    assert prefill <= LOSO_PREFILL_MEDIAN


def test_committed_fit_is_the_fit_of_the_committed_rows(cases: list[Case]) -> None:
    base = load_estimate_catalog(catalog_dir(), fitted=False).backends
    fitted = fit(cases, base)
    names = fitted_names(cases, fitted)
    path = catalog_dir() / "speed_fit.yaml"
    committed = FittedFactors.model_validate(read_yaml(path))
    fresh = fitted_fields(fitted, names)
    assert set(committed.backends) == set(fresh)
    for name, fields in fresh.items():
        for key, value in fields.items():
            held = committed.backends[name][key]
            if isinstance(value, list):
                assert isinstance(held, tuple | list)
                assert list(held) == pytest.approx(value, abs=2e-3), (name, key)
            else:
                assert held == pytest.approx(value, abs=2e-3), (name, key)
