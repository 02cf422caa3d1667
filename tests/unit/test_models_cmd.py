"""`stackctl models`: every catalog model with its score, basis, size and files; --fits adds the
best file that fits the declared box and its predicted speed."""

from __future__ import annotations

import json

import pytest

from stackctl.cli import main


def test_models_json_lists_every_model_with_score_and_basis(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "--workload", "chat", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema_version"] == 1
    assert out["workload"] == "chat"
    rows = {r["model"]: r for r in out["models"]}
    assert {"kimi-k2", "glm-4.6", "gpt-oss-120b", "llama-3.1-8b"} <= set(rows)
    scores = [r["score"] for r in out["models"]]
    assert scores == sorted(scores, reverse=True)
    gpt = rows["gpt-oss-120b"]
    assert gpt["params_total_b"] == 117
    assert gpt["params_active_b"] == 5.1
    assert gpt["fits"] is None  # not asked
    assert any("served mode: thinking" in line for line in gpt["basis"])
    assert gpt["files"][0]["quant"] == "MXFP4_MOE"
    assert rows["kimi-k2"]["attention"] == "MLA"


def test_models_fits_on_a_declared_8gb_box(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["models", "--workload", "chat", "--fits", "--gpu", "rtx 3070 ti",
            "--cpu", "ryzen 9 7950x", "--ram", "64", "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    moe = rows["qwen3-30b-a3b"]["fits"]
    assert moe is not None
    assert moe["placement"]["n_cpu_moe"]  # experts in system RAM on an 8 GB card
    assert moe["tg_tps"] > 20
    assert moe["tg_tps_range"][0] <= moe["tg_tps"] <= moe["tg_tps_range"][1]
    assert rows["qwen3-235b-a22b"]["fits"] is None
    assert "does not fit" in rows["qwen3-235b-a22b"]["fits_note"]
