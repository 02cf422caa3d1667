"""Predicted ranges are never narrower than what held-out public rows on the same backend
showed (catalog/speed_fit.yaml decode_validation / prefill_validation), and never above
physics."""

from __future__ import annotations

import json
import re

import pytest

from stackctl.cli import main
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.validation import widen
from stackctl.resources import catalog_dir


def test_widen_keeps_a_wider_range_and_caps_at_physics() -> None:
    assert widen(100.0, (50.0, 150.0), (0.8, 1.2), 1e9) == (50.0, 150.0)
    assert widen(100.0, (90.0, 110.0), (0.8, 1.2), 1e9) == (80.0, 120.0)
    assert widen(100.0, (90.0, 110.0), (0.8, 1.2), 115.0) == (80.0, 115.0)
    assert widen(100.0, (90.0, 110.0), None, 1e9) == (90.0, 110.0)


@pytest.mark.parametrize("gpu", ["Intel Arc Pro B70", "Radeon AI PRO R9700"])
def test_a_gpu_range_covers_its_backends_held_out_spread(
    gpu: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", "--gpu", gpu, "--backend", "vulkan", "--model", "qwen3.6-35b-a3b",
            "--quant", "Q4_K_M", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    key = next(m.group(1) for line in out["basis"]
               if (m := re.match(r"speed gpu0: .*\((\S+) factors from", line)))  # fmt: skip
    assert key.startswith("vulkan-")
    factors = load_estimate_catalog(catalog_dir()).backends.backends[key]
    assert factors.decode_validation
    assert factors.prefill_validation
    speed = out["speed"]
    for figure, (low, high), (lo, hi) in (
        (speed["tg_tps"], speed["tg_tps_range"], factors.decode_validation),
        (speed["pp_tps"], speed["pp_tps_range"], factors.prefill_validation),
    ):
        assert low <= figure * lo * 1.01
        assert high >= figure * hi * 0.99
    assert any("held-out public rows" in line for line in out["basis"])
