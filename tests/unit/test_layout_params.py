"""Every catalog model the estimator lays out tensor by tensor adds up to its published
parameter count: a layout that drops or doubles a tensor family shows here first."""

from __future__ import annotations

import math

import pytest

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.layout import layout_tensors
from stackctl.resources import catalog_dir

MODELS = load_estimate_catalog(catalog_dir(), fitted=False).models


def _params_b(model_id: str) -> float:
    entry = MODELS[model_id]
    tensors = layout_tensors(entry)
    return sum(math.prod(t.shape) for t in tensors if not t.mtp) / 1e9


def test_minimax_m2_lays_out_its_published_230b() -> None:
    # config.json: 62 layers, hidden 3072, 48 Q / 8 KV heads of 128, 256 experts of 1536
    assert _params_b("minimax-m2.7") == pytest.approx(229.9, rel=0.01)


@pytest.mark.parametrize("model", sorted(MODELS), ids=str)
def test_layouts_match_the_published_parameter_count(model: str) -> None:
    entry = MODELS[model]
    if entry.params_total is None:
        pytest.skip(f"{model}: the catalog has no published parameter count")
    try:
        counted = _params_b(model)
    except EstimateError:
        pytest.skip(f"{model}: no tensor layout for {entry.gguf_arch}")
    # published counts are rounded (e.g. "35B"), and some include vision or audio towers and
    # MTP heads that llama.cpp's text model does not load (Gemma 4 E2B: 5.1B with them): 15 %
    assert counted == pytest.approx(entry.params_total, rel=0.15), (model, counted)
