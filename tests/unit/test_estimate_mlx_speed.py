"""`stackctl estimate --engine mlx` and the resolver's MLX candidates give one figure (issue 14
items 5 and 8): llama.cpp's estimate of the GGUF of like bits on the same box, scaled by the
published same-box ratio of the two engines (estimate/mlx_speed.py), within physics.

Before, the CLI path ran a bare roofline over the MLX bytes: 270 tok/s for Qwen3.6-35B-A3B
4-bit on a 64 GB M4 Max, where the plan for the same box said 98.5.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stackctl.detect import declare_hardware
from stackctl.errors import EstimateError
from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.mlx_speed import Verdict, unmeasured_span, verdict
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

MOE = "qwen3.6-35b-a3b"


@pytest.fixture(scope="module")
def cat() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


@pytest.fixture(scope="module")
def m4_max() -> HardwareProfile:
    return declare_hardware(gpus=["Apple M4 Max"], ram_gib=64)


def _run(cat: EstimateCatalog, hw: HardwareProfile, **kw: object) -> Estimate:
    body: dict[str, object] = {"model": MOE, "backend": "metal", **kw}
    return estimate(EstimateRequest.model_validate(body), hw, catalog=cat)


def _pair(
    cat: EstimateCatalog, hw: HardwareProfile, mlx_quant: str, gguf: str
) -> tuple[Estimate, Estimate, Verdict]:
    """The MLX estimate, llama.cpp's for the GGUF of like bits (all layers on the GPU), and the
    evidence's verdict for the model at those bits."""
    assert cat.mlx is not None
    mlx = _run(cat, hw, quant=mlx_quant, engine="mlx")
    base = _run(cat, hw, quant=gguf, ngl=999)
    return mlx, base, verdict(cat.mlx, MOE, True, f"MLX-{mlx_quant.removeprefix('MLX-')}")


def test_mlx_decode_is_llamacpps_figure_times_the_published_ratio(
    cat: EstimateCatalog, m4_max: HardwareProfile
) -> None:
    mlx, gguf, v = _pair(cat, m4_max, "MLX-4bit", "Q4_K_M")
    assert v.tg_ratio is not None
    assert mlx.speed.tg_tps == pytest.approx(gguf.speed.tg_tps * v.tg_ratio)
    low, high = gguf.speed.tg_tps_range
    assert mlx.speed.tg_tps_range == pytest.approx((low * v.tg_ratio, high * v.tg_ratio))
    # physics: every active weight read once per token, at the chip's bandwidth
    bound = 546e9 / (mlx.memory.weights_bytes * 3 / 35)
    assert mlx.speed.tg_tps_ceiling == pytest.approx(bound)
    assert mlx.speed.tg_tps_range[1] <= bound
    # prefill: x3.62 would pass llama.cpp's compute bound, so llama.cpp's figure is kept
    assert mlx.speed.pp_tps == pytest.approx(gguf.speed.pp_tps)
    assert mlx.speed.pp_tps <= mlx.speed.pp_tps_ceiling  # type: ignore[operator]
    line = mlx.basis[-1]
    assert line.startswith("mlx-lm speed: llama.cpp Q4_K_M on this box")
    assert f"x{v.tg_ratio:.2f} decode" in line
    assert "would pass the compute bound" in line


def test_4bit_names_the_same_build(cat: EstimateCatalog, m4_max: HardwareProfile) -> None:
    named = _run(cat, m4_max, quant="MLX-4bit", engine="mlx")
    short = _run(cat, m4_max, quant="4bit", engine="mlx")
    assert short.model_dump() == named.model_dump()


def test_no_comparison_for_the_kind_keeps_llamacpps_figure_over_the_published_span(
    cat: EstimateCatalog, m4_max: HardwareProfile
) -> None:
    mlx, gguf, v = _pair(cat, m4_max, "8bit", "Q8_0")
    assert v.tg_ratio is None
    assert cat.mlx is not None
    lo, hi = unmeasured_span(cat.mlx, 8)
    assert mlx.speed.tg_tps == pytest.approx(gguf.speed.tg_tps)
    low, high = gguf.speed.tg_tps_range
    assert mlx.speed.tg_tps_range[0] == pytest.approx(low * lo)
    ceiling = mlx.speed.tg_tps_ceiling
    assert ceiling is not None
    assert mlx.speed.tg_tps_range[1] == pytest.approx(min(high * hi, ceiling))
    assert "no published same-box comparison" in mlx.basis[-1]


def test_a_gguf_quant_with_mlx_and_an_mlx_build_with_llamacpp_are_refused(
    cat: EstimateCatalog, m4_max: HardwareProfile
) -> None:
    with pytest.raises(EstimateError, match="'Q4_K_M' is a GGUF quant") as gguf:
        _run(cat, m4_max, quant="Q4_K_M", engine="mlx")
    assert "--quant MLX-4bit or MLX-8bit" in (gguf.value.hint or "")
    with pytest.raises(EstimateError, match="'MLX-4bit' is an MLX build") as mlx:
        _run(cat, m4_max, quant="MLX-4bit")
    assert "--engine mlx" in (mlx.value.hint or "")


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ({"spec_type": "mtp"}, "speculative decoding is not modelled"),
        ({"n_cpu_moe": 10}, "no expert offload"),
        ({"override_tensor": ["exps=CPU"]}, "no expert offload"),
    ],
)
def test_llamacpp_only_options_are_refused_with_mlx(
    cat: EstimateCatalog, m4_max: HardwareProfile, option: dict[str, object], why: str
) -> None:
    """The llama.cpp twin would carry them into MLX's figure: refused, not silently used."""
    with pytest.raises(EstimateError, match=why):
        _run(cat, m4_max, quant="MLX-4bit", engine="mlx", **option)


def test_the_cli_defaults_to_the_4bit_build_and_says_how_it_got_there() -> None:
    argv = [sys.executable, "-m", "stackctl", "estimate", "--gpu", "Apple M4 Max", "--ram", "64",
            "--engine", "mlx", "--model", MOE, "--json"]  # fmt: skip
    out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert "MLX_4BIT" in out["model"]
    assert any(b.startswith("mlx-lm speed: llama.cpp Q4_K_M") for b in out["basis"])
    assert out["speed"]["tg_tps"] <= out["speed"]["tg_tps_ceiling"]


def test_mlx_is_refused_off_apple(cat: EstimateCatalog) -> None:
    rtx = declare_hardware(gpus=["RTX 4090"], ram_gib=64)
    with pytest.raises(EstimateError, match="only on Apple silicon"):
        estimate(EstimateRequest(model=MOE, quant="MLX-4bit", engine="mlx"), rtx, catalog=cat)
