"""Every catalog model the estimator lays out tensor by tensor adds up to its published
parameter count: a layout that drops or doubles a tensor family shows here first."""

from __future__ import annotations

import math

import pytest

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.layout import layout_tensors
from stackctl.estimate.view import load_model_view
from stackctl.models.estimate import EstimateRequest
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


# llama-bench's model_n_params and model_size of the GGUFs an M2 Ultra owner benched
# (AtomGradient/apple-silicon-llm-inference@3a944e47 data/raw/*.csv): the Qwen3.5 small
# models' shapes come from config copies, so the files are what checks them.
QWEN35_GGUF_PARAMS = {"qwen3.5-0.8b": 752_393_024, "qwen3.5-4b": 4_205_751_296,
                      "qwen3.5-9b": 8_953_803_264}  # fmt: skip
QWEN35_4B_FILE_BYTES = {"F16": 8_413_425_664, "Q8_0": 4_471_435_264, "Q4_K_M": 2_696_546_304}


@pytest.mark.parametrize("model", sorted(QWEN35_GGUF_PARAMS))
def test_qwen35_small_layouts_count_the_gguf_params(model: str) -> None:
    assert _params_b(model) * 1e9 == pytest.approx(QWEN35_GGUF_PARAMS[model], rel=0.001)


@pytest.mark.parametrize("quant", sorted(QWEN35_4B_FILE_BYTES))
def test_qwen35_4b_weights_match_the_benched_files(quant: str) -> None:
    catalog = load_estimate_catalog(catalog_dir())
    view = load_model_view(EstimateRequest(model="qwen3.5-4b", quant=quant), catalog)
    ours = view.loaded_bytes()
    assert ours == pytest.approx(QWEN35_4B_FILE_BYTES[quant], rel=0.005)
