"""The catalog reaches the open frontier: every model has a file the lock can pin, and the 200B+
models come with the quants people run on 128-512 GB boxes, dynamic low-bit included."""

from __future__ import annotations

from stackctl.catalog import load_catalog
from stackctl.estimate import load_estimate_catalog
from stackctl.estimate.catalog import lookup_quant
from stackctl.policy import load_policy
from stackctl.resources import catalog_dir

FRONTIER = ["kimi-k2", "deepseek-v3", "glm-4.6", "qwen3-235b-a22b", "minimax-m2.7",
            "qwen3-235b-a22b-thinking-2507", "gpt-oss-120b"]  # fmt: skip


def test_every_catalog_model_has_a_lockable_file() -> None:
    catalog = load_catalog(catalog_dir())
    models = load_estimate_catalog(catalog_dir()).models
    for model_id in models:
        files = [a for a in catalog.artefacts if a.model == model_id]
        assert files, f"{model_id}: no file in catalog/artefacts.yaml"
        for a in files:
            assert a.repo, (model_id, a.quant)
            assert a.revision, (model_id, a.quant)
            assert a.url.endswith(a.file), (model_id, a.quant)
            # sha256 null is `unverified` in the lock until the first fetch records it; the
            # origin says where the name (and size) came from
            assert a.origin, (model_id, a.quant)


def test_frontier_models_have_sized_files_and_dynamic_low_bit_quants() -> None:
    catalog = load_catalog(catalog_dir())
    estimates = load_estimate_catalog(catalog_dir())
    quality = load_policy(catalog_dir()).quants.quants
    for model_id in FRONTIER:
        assert estimates.models[model_id].params_total, model_id
        files = [a for a in catalog.artefacts if a.model == model_id]
        assert files, model_id
        for a in files:
            lookup_quant(a.quant, estimates)  # the estimator knows the recipe
            assert a.quant in quality, (model_id, a.quant)  # the scorer knows its loss
    sized = {a.model for a in catalog.artefacts if a.size}
    assert {"kimi-k2", "deepseek-v3", "glm-4.6"} <= sized
    dynamic = {a.model for a in catalog.artefacts if a.quant.startswith("UD-")}
    assert {"kimi-k2", "deepseek-v3", "glm-4.6", "qwen3-235b-a22b"} <= dynamic
