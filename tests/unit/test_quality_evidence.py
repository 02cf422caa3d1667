"""The quality scorer against evidence it must agree with (catalog/quality.yaml).

- Kendall's tau between the chat score and the arena's open-model ordering, leave-one-out
  (the arena rating is an input: each model is scored without its own rating): >= 0.8 over
  >= 12 catalog models (benchmarks/quality_tau.py prints the table).
- Pairwise orderings practitioners agree on, at the same quant and within one served mode.
- A missing figure is imputed (with an sd), never the catalog's worst.
"""

from __future__ import annotations

import pytest

from stackctl.estimate import EstimateCatalog, load_estimate_catalog
from stackctl.models.policy import Policy
from stackctl.policy import load_policy
from stackctl.resolve.evidence import Evidence, build_evidence, measured
from stackctl.resolve.score import quality_score
from stackctl.resolve.validate import arena_tau, kendall_tau
from stackctl.resources import catalog_dir


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(catalog_dir())


@pytest.fixture(scope="module")
def estimates() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


@pytest.fixture(scope="module")
def evidence(policy: Policy, estimates: EstimateCatalog) -> Evidence:
    return build_evidence(policy.quality, estimates.models)


def test_kendall_tau_is_the_textbook_statistic() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_chat_score_orders_models_as_the_arena_does_leave_one_out(
    policy: Policy, estimates: EstimateCatalog
) -> None:
    result = arena_tau(policy, estimates.models)
    assert result.n >= 12
    assert result.tau >= 0.8, result.rows


# (workload, better, worse, mode both are served in, why practitioners agree)
PAIRS = [
    ("chat", "llama-3.1-70b", "llama-3.1-8b", "non_thinking", "same family, 9x the size"),
    ("chat", "llama-3.1-8b", "llama-3.2-3b", "non_thinking", "same family, larger"),
    ("chat", "llama-3.2-3b", "llama-3.2-1b", "non_thinking", "same family, larger"),
    ("chat", "gemma-3-27b", "gemma-3-12b", "non_thinking", "same family, larger"),
    ("chat", "gemma-3-12b", "gemma-3-4b", "non_thinking", "same family, larger"),
    ("chat", "gemma-3-4b", "gemma-3-1b", "non_thinking", "same family, larger"),
    ("chat", "qwen3-235b-a22b", "qwen3-30b-a3b", "non_thinking", "both Instruct-2507"),
    ("chat", "qwen3-next-80b-a3b", "qwen3-30b-a3b", "non_thinking", "Qwen's own comparison"),
    ("chat", "kimi-k2", "llama-3.1-70b", "non_thinking", "frontier MoE vs a 2024 70B"),
    ("chat", "deepseek-v3", "llama-3.1-70b", "non_thinking", "frontier MoE vs a 2024 70B"),
    ("chat", "qwen3-30b-a3b", "llama-3.1-8b", "non_thinking", "the 8 GB + RAM MoE case"),
    ("chat", "gemma-3-27b", "llama-3.1-8b", "non_thinking", "a 2025 27B vs a 2024 8B"),
    ("chat", "mistral-small-3.2-24b", "llama-3.1-8b", "non_thinking", "24B vs 8B"),
    ("chat", "qwen3-8b", "qwen3-4b", "thinking", "same family, larger"),
    ("chat", "qwen3-4b", "qwen3-1.7b", "thinking", "same family, larger"),
    ("chat", "gpt-oss-120b", "gpt-oss-20b", "thinking", "same family, larger"),
    ("chat", "qwen3.6-27b", "qwen3-8b", "thinking", "a newer generation, 3x the size"),
    ("chat", "qwen3-235b-a22b-thinking-2507", "qwen3-8b", "thinking", "same family, larger"),
    ("chat", "glm-4.6", "glm-4.5-air", "thinking", "the flagship over its Air sibling"),
    ("code", "qwen3.6-27b", "qwen3-8b", "thinking", "SWE-bench 77 vs an 8B"),
    ("code", "qwen3-235b-a22b-thinking-2507", "gpt-oss-20b", "thinking", "LCB 74 vs a 20B"),
    ("extract", "qwen3-8b", "qwen3-1.7b", "thinking", "IFEval 85.0 vs 72.5"),
]


@pytest.mark.parametrize(("workload", "better", "worse", "mode", "why"), PAIRS,
                         ids=[f"{p[0]}:{p[1]}>{p[2]}" for p in PAIRS])  # fmt: skip
def test_practitioners_pairwise_orderings(
    workload: str, better: str, worse: str, mode: str, why: str,
    policy: Policy, estimates: EstimateCatalog, evidence: Evidence,
) -> None:  # fmt: skip
    for model in (better, worse):
        assert policy.quality.models[model].mode == mode, model
    models = estimates.models

    def score(m: str) -> float:
        return quality_score(models[m], "Q4_K_M", workload, policy, evidence).value

    assert score(better) > score(worse), why


def test_the_issues_bad_picks_are_gone(
    policy: Policy, estimates: EstimateCatalog, evidence: Evidence
) -> None:
    """Issue 10: gpt-oss-120b scored barely above Llama-3.1-8B and Qwen3-8B below it, both
    because a missing MMLU-Pro counted as the catalog's lowest (Gemma 3 1B's 14.7)."""
    models = estimates.models

    def score(m: str, quant: str) -> float:
        return quality_score(models[m], quant, "chat", policy, evidence).value

    assert score("gpt-oss-120b", "MXFP4_MOE") > score("llama-3.1-8b", "Q4_K_M") + 15
    assert score("qwen3-8b", "Q4_K_M") > score("llama-3.1-8b", "Q4_K_M")
    gpt = evidence.item("gpt-oss-120b", "mmlu_pro")
    assert gpt is not None
    assert gpt.imputed
    assert gpt.value > 60
    assert gpt.sd_z > 0
    lowest = min(f["mmlu_pro"] for f in measured(policy.quality).values() if "mmlu_pro" in f)
    assert gpt.value > lowest


def test_imputed_figures_say_so_in_the_basis(
    policy: Policy, estimates: EstimateCatalog, evidence: Evidence
) -> None:
    basis = quality_score(estimates.models["qwen3-8b"], "Q4_K_M", "chat", policy, evidence).basis
    text = "\n".join(basis)
    assert "served mode: thinking" in text
    assert "mmlu_pro: no published figure; imputed ~" in text
    assert "+/-" in text
    assert "gpqa_diamond 62 (Q3-TR, 2025-05-14)" in text


def test_a_figure_in_the_other_mode_is_not_used(policy: Policy, estimates: EstimateCatalog) -> None:
    """Like for like: a non-thinking figure does not count for a model served thinking."""
    quality = policy.quality.model_copy(deep=True)
    fig = quality.models["qwen3-8b"].benchmarks["gpqa_diamond"]
    quality.models["qwen3-8b"].benchmarks["gpqa_diamond"] = fig.model_copy(
        update={"mode": "non_thinking"}
    )
    ev = build_evidence(quality, estimates.models)
    assert "gpqa_diamond" not in measured(quality).get("qwen3-8b", {})
    item = ev.item("qwen3-8b", "gpqa_diamond")
    assert item is not None
    assert item.imputed


def test_every_figure_has_a_source_and_a_date(policy: Policy) -> None:
    q = policy.quality
    for model, mq in q.models.items():
        for item, fig in mq.benchmarks.items():
            assert item in q.items, (model, item)
            assert fig.source in q.sources, (model, item, fig.source)
            assert fig.date or fig.source in q.source_dates, (model, item, fig.source)


def test_total_params_matter_as_the_data_says(evidence: Evidence) -> None:
    """With no figure at all, a larger model of a family is imputed higher on MMLU-Pro."""
    small, large = evidence.item("qwen3-0.6b", "mmlu_pro"), evidence.item("qwen3-32b", "mmlu_pro")
    assert small is not None
    assert large is not None
    assert large.value > small.value
