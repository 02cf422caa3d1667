"""The public llama-bench rows against the estimator: coverage, the leave-one-source-out
medians, and the committed fit (catalog/speed_fit.yaml) reproduced from the committed data.

The issue's targets are decode <= 10 % and prefill <= 20 % (LOSO medians). The bounds below are
what the estimator reaches today (benchmarks/speed_vs_public.py prints the table): they keep it
from getting worse and are to be tightened toward the targets, not loosened.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.detect import declare_hardware
from stackctl.errors import EstimateError
from stackctl.estimate import estimate
from stackctl.estimate.catalog import FittedFactors, load_estimate_catalog
from stackctl.estimate.public_fit import (
    PREFILL_MIN_BUILD,
    PREFILL_MIN_DATE,
    REPEAT,
    SAME_TEST,
    Case,
    _merge_repeats,
    build_number,
    fit,
    fitted_fields,
    fitted_names,
    leave_one_source_out,
    load_cases,
    predict,
    public_rows,
    set_aside,
    summary,
)
from stackctl.estimate.validation import POOLED, range_coverage, ratios, spreads
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "tests/data/speed/public_llama_bench.yaml"
HARDWARE = ROOT / "tests/data/estimate/public_hardware.yaml"
# Every factor is now fitted from the training rows alone (no hand-set figure that came from a
# held-out source's box): decode rose from a leaky 15.1 % to an honest 16.4 %, prefill fell from
# 29.2 % to 27.2 % (tiles of routed-expert matmuls, Strix Halo's matrix peak).
# Then decode attention adds its KV read and its ops (16.4 -> 15.0 %), and six more sources came
# in (458 rows: Strix Halo, Intel Arc and RDNA4 each from a second owner): decode 13.0 %.
# Prefill on the 401 old rows stayed 27.2 %; the new ones are harder (Vulkan runs whose Mesa has
# no matrix cores, Intel SYCL at depth): 30.7 % on all 441 used rows.
# A decode time multiplier per quant family and backend (K-quants, MXFP4, BF16 read slower than
# Q4_0/Q8_0 on ROCm, Vulkan and SYCL; speed.quant_family): decode 13.0 -> 11.0 %.
# Then two data fixes (issue 14): prefill rows whose build line gives no number are dated by
# their source (PR #4766 Jan 2024, #7487 May 2024, #13324 May 2025: set aside like the builds
# < 6500), and Intel Arc peaks follow the file's convention (XMX matrix rate, not the vector
# rate; the Arc Pro B70 by name at Intel's 367 INT8 TOPS). Fitted-on-all prefill 17.8 -> 16.6 %,
# but LOSO prefill 30.7 -> 34.4 %: with kyuz0's B70 left out, no other Vulkan run on an Intel
# chip with matrix cores remains (the A310's prints "matrix cores: none"), so the B70's Vulkan
# rows are predicted from other vendors' factors at 5.5x the peak they had before. Raised to
# hold the corrected data, not loosened for a model change; the gap is in the issue.
# Then the Vulkan matrix path (rates.vulkan_peak): a source whose log's ggml_vulkan line prints
# "matrix cores: none" is predicted at the vector FP16 rate: A310 LOSO prefill 323.6 -> 13.9 %,
# RX 9070 XT on a Pi 175.8 -> 36.5 %; all rows 34.4 -> 33.9 %. Still above main's 30.7 %: the
# B70's own Vulkan and SYCL rows (24 of 208, LOSO 141.8 %) have no other Intel matrix-core run
# to learn from. Tightened to the new figure, not to 0.31 (not reached).
# Then, in one session (534 rows; each step's figures on the rows of its time):
# - prefill reads the attended KV once per tile of query rows (speed.py, fitted passes) and a
#   three-row group refines its backend (MIN_GROUP_ROWS 6 -> 3): prefill 33.9 -> 27.6 %;
# - the Ryzen Z1 iGPU and the RTX 4070 Laptop got their peaks (the similar-chip fallback had put
#   the Z1 at a quarter of its rate, and the fit raised Strix Halo's Vulkan efficiency to match):
#   prefill 27.6 -> 24.5 %;
# - gpt-oss from OpenAI's F16 GGUF is its own recipe (MXFP4_MOE_F16, the files' exact sizes),
#   not MXFP4 scaled by file size: decode 11.0 -> 9.3 %;
# - an RX 7900 XTX source (PR #27952), then factors grouped by matrix-unit generation (RDNA 3 /
#   RDNA 4 / Xe-HPG / Xe2, hardware.yaml tensor_rates) rather than memory kind: prefill 23.9 ->
#   19.5 %;
# - four more Intel Arc sources (PMZFX's B70 over SYCL, 68 rows; geerlingguy's B50 and B580;
#   PR #13885's B580): decode 9.4 -> 10.3 %, prefill 19.5 -> 21.6 % (the new B70 rows are hard:
#   its SYCL attention at long prompts runs 2x slower than any other source's);
# - a source's repeated runs of one test count once (16 of PMZFX's tg128 rows repeat a test of
#   another of its files): decode 10.3 -> 9.8 %;
# - the prefill ceiling allows the int8 matrix rate and the fastest host link (it capped 16
#   CUDA rows below what they measured), and the public M4 box is the 10-core-GPU variant it
#   is: prefill 21.6 -> 20.9 %.
# Then (issue 14, the next session):
# - a second MoE-offload source (carteakey: gpt-oss-120b --n-cpu-moe 31 beside an RTX 4070, DDR5
#   at 2000 MT/s) and offloaded experts reaching the GPU at the host link or a third of host
#   memory bandwidth (pageable copies staged through pinned memory): carteakey's LOSO prefill
#   173 -> 20 %, all rows 20.9 -> 20.7 %;
# - ikawrakow's CPU table (Llama 3.1 8B in 12 quant types on a Ryzen 9 7950X and an M2 Max at
#   2-4 threads, 24 tg rows) and the CPU predicted with the factors the estimator ships (no
#   longer fitted to the public CPU rows, which had moved the host's offload hand-over the MoE
#   rows are fitted with): MoE offload 15.8 -> 10.1 %, prefill 20.1 %; decode 10.0 -> 10.7 %,
#   the new CPU rows being 45-80 % under: a few threads of a desktop or Apple core read 30+ GB/s
#   each, where backends.yaml assumes 12 (a server core's figure).
# Then (issue 14, the session after):
# - two more sources: a fourth Strix Halo owner (visorcraft, 24 rows) and the first data-centre
#   NVIDIA rows (an L40S and an A30, 20 rows); held out, the L40S and A30 prefill came out
#   +196 % and +339 %, and LOSO prefill went 20.1 -> 19.9 %, decode 10.6 -> 10.7 %;
# - CUDA's quantised prefill against the int8 units MMQ runs on (backends.yaml prefill_int8; a
#   workstation or data-centre card runs int8 at 2x its FP16-with-FP32-accumulate figure, a
#   GeForce at 4x), the pooled GPU level still on FP16: L40S +52 %, A30 +123 %, the GeForce-class
#   sources a little the other way (DGX Spark 8.9 -> 9.6 %, ryanilano 13.0 -> 13.3 %), all rows
#   19.9 -> 19.8 %: at the target.
# - two more sources (rocm-issue-4868, one RX 7900 XTX ROCm decode row; insiderllm-tamanna-3090,
#   an RTX 3090 at a 420 W limit that disagrees with lotto's 220 W card by 13 % in decode and 37 %
#   in prefill: the model knows no power limit): decode 10.7 -> 11.2 %, prefill 19.8 -> 22.2 %
#   (DGX Spark held out 9.6 -> 15.1 %, lotto 2.2 -> 57.8 %).
# - a fixed decode time per routed expert a token uses (BackendFactors.expert_slot_ms; prior 0,
#   fitted per backend group): SYCL and Vulkan on Intel take 0.015-0.02 ms, CUDA 0: decode
#   11.2 -> 9.6 %, prefill unchanged.
# - insiderllm-rushuna-3060 (an RTX 3060 with --n-cpu-moe 40/32/24, a third offload source,
#   every row 10-14 % under held out): decode 9.6 -> 10.2 %, prefill 22.2 -> 21.4 %, MoE offload
#   decode 12.5 -> 12.0 % (26 rows, three sources).
# - insiderllm-tamanna-ramspeed (the same RTX 3090 box at DDR4-3000 and -2133, --n-cpu-moe 40/20/0,
#   72 rows): every offload row 20-28 % under held out: decode 10.2 -> 10.4 %, prefill 21.4 ->
#   20.5 %, MoE offload decode 12.0 -> 20.5 % (34 rows, four sources).
# - the fitted host offload factors shipped (estimate uses them; leave-one-source-out already
#   did): no change here. Three sources from helpers, each with criteria fixed before any
#   prediction: xiongjiedai-llama3-mac (76 Apple Metal rows, build 2795-2797, so 22 decode rows
#   enter; held out 10.1 %), pessimist228-5090 and deepindeepsea-5090 (the first RTX 50 rows, 72;
#   the RTX 5090 Q4_0 decode held out 23 % under, its large-ubatch MoE prefill 60-100 % over):
#   decode 10.4 -> 11.2 %, prefill 20.5 -> 20.8 %, MoE offload decode 20.5 -> 21.8 %.
# Then (issue 14, a later session): an expert's tokens in a prefill ubatch counted as the
#   binomial spread they are, not their mean (estimate/expert_tiles.py): at 64 tokens per expert
#   on average about half the experts pay a second 64-column tile, where the mean alone said
#   none did. The tile stays the 64 it was assumed to be. Prefill 20.9 -> 18.1 % (DGX Spark
#   held out 16.5 -> 8.9 %, the RTX 5090's large-ubatch rows 80 -> 58 %; PMZFX's B70 34 -> 43 %
#   and visorcraft 21 -> 29 % as the shared factors move); decode unchanged. The median is
#   sensitive to the tile: 48 or 96 columns give 21.8 % and 21.4 %.
# - jitesh-m4-qwen35 (Qwen3.5 0.8B/4B/9B on a base M4, after Qwen3.5's Metal speed-up; held out
#   2.6 % decode, 0.8 % prefill): decode 10.3 -> 10.1 %, prefill 18.1 -> 17.7 %.
# Then: a recurrent layer's prefill charged a fixed time per prompt token, its token-by-token
#   state scan (speed.py SCAN_NOTE), fitted per backend (CUDA about 1 us per layer, SYCL 0.5,
#   Vulkan, ROCm and Metal 0.1 or less). Criteria fixed before the run: median no worse, no
#   more rows past 40 %, decode untouched. Prefill 17.7 -> 17.2 %, rows past 40 % 92 -> 91;
#   fitted on all rows 15.8 -> 13.2 %. The RTX 5090's large-ubatch rows held out 57 -> 40 %,
#   InsiderLLM's RTX 3090 rows 26 -> 15 %; DGX Spark 8.7 -> 24 % (its MoE prefill now meets
#   the discrete cards' higher expert share, which the hybrid rows no longer drag down).
# Then: the host's offloaded experts read at a share of its stated bandwidth fitted to the
#   offload rows (0.70; the CPU's own hand-set 0.6 before), as the hand-over and host link are.
#   Criteria fixed before the run: decode median at or under 10 %, MoE offload median no
#   worse, no more decode rows past 40 %, prefill untouched. Decode 10.1 -> 9.8 %, MoE offload
#   12.1 -> 11.3 % (worst 26 -> 38 %: carteakey's DDR5-2000 box, held out, 12 -> 37 % over),
#   rows past 40 % 33 -> 33; decode ranges 89 -> 87 % inside.
LOSO_DECODE_MEDIAN = 0.10  # target 0.10
LOSO_PREFILL_MEDIAN = 0.18  # target 0.20
LOSO_MOE_OFFLOAD_DECODE_MEDIAN = 0.12  # target 0.15 (issue 14, item 4)
# Share of held-out rows inside their predicted range once GPU ranges are widened to the
# spread of the other sources' held-out rows (estimate/validation.py): 83 % and 82 % today,
# against 76 % and 66 % by the efficiency spreads alone.
LOSO_DECODE_INSIDE = 0.8
LOSO_PREFILL_INSIDE = 0.75


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
    offload = [s for s in loso if s.case.offload]
    assert len({s.case.source for s in offload}) >= 2
    _, moe, _ = summary(offload, "tg")
    assert moe <= LOSO_MOE_OFFLOAD_DECODE_MEDIAN
    # ranges: the committed spreads are those of these held-out rows, and with them a source's
    # rows land inside the range (spread taken from the other sources) at least this often
    committed = FittedFactors.model_validate(read_yaml(catalog_dir() / "speed_fit.yaml"))
    spread = spreads(ratios(loso))
    for name, fields in committed.backends.items():
        if name == "cpu":
            assert "decode_validation" not in fields  # the CPU keeps its own ranges
            continue
        own = spread.get(name.split("-")[0]) or spread[POOLED]
        assert fields["decode_validation"] == pytest.approx(own["tg"], abs=2e-3), name
        assert fields["prefill_validation"] == pytest.approx(own["pp"], abs=2e-3), name
    for test, plain_floor, floor in (
        ("tg", 0.72, LOSO_DECODE_INSIDE),
        ("pp", 0.55, LOSO_PREFILL_INSIDE),
    ):
        n, plain = range_coverage(loso, test, widened=False)
        _, inside = range_coverage(loso, test)
        assert plain / n >= plain_floor  # the efficiency spreads alone
        assert inside / n >= floor
        assert inside > plain


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


def test_only_prefill_of_stale_builds_is_set_aside() -> None:
    used, aside = public_rows(ROWS)
    assert aside, "the Jul-Aug 2025 Strix Halo sweeps are in the data"
    assert all(why.startswith("prefill of") or why == REPEAT for _ref, why in aside)
    assert any("dated 2024-01-10" in why for _ref, why in aside), "PR #4766's RTX 4090 rows"
    numbers = [(r, build_number(r.get("build"))) for r in used]
    old = [r for r, n in numbers if n is not None and n < PREFILL_MIN_BUILD]
    assert old, "their decode rows stay"
    assert {r["test"] for r in old} == {"tg"}
    undated = {"source": "x", "test": "pp", "build": "141a908"}
    assert set_aside(undated, "2025-05-07") is not None
    assert set_aside(undated, PREFILL_MIN_DATE) is None
    assert set_aside(undated, None) is None  # no date: kept
    assert set_aside({**undated, "test": "tg"}, "2024-01-10") is None
    assert build_number("83bc2f28 (6077), TheRock ROCm 7 nightly") == 6077
    assert build_number(None) is None


def test_runs_that_repeat_one_test_count_once() -> None:
    """A source's second run of the same test (same box, build, file, flags, depth) is folded
    into the first at their mean; a run with other flags (another KV type) stays a row."""
    row = {"source": "s", "ref": "a", "hardware": {"gpu": "g"}, "backend": "sycl", "build": "b",
           "model": "m", "quant": "Q4_K_M", "size_gib": 1.0, "ngl": 99,
           "flags": {"fa": 1, "type_k": None}, "test": "tg", "n_prompt": 0, "n_gen": 128,
           "depth": 0, "tps": 50.0}  # fmt: skip
    again = {**row, "ref": "b", "tps": 54.0}
    other_kv = {**row, "ref": "c", "flags": {"fa": 1, "type_k": "q8_0"}, "tps": 40.0}
    merged, folded = _merge_repeats([row, again, other_kv])
    assert [(r["ref"], r["tps"]) for r in merged] == [("a", 52.0), ("c", 40.0)]
    assert folded == [("s: b", REPEAT)]
    used, _aside = public_rows(ROWS)
    keys = [json.dumps([r.get(k) for k in SAME_TEST], sort_keys=True) for r in used]
    assert len(keys) == len(set(keys))


def test_a_backend_with_few_held_out_rows_takes_the_pooled_spread() -> None:
    rows = [("cuda", "tg", 0.8 + i / 100) for i in range(40)] + [("metal", "tg", 2.0)] * 5
    rows += [("cpu", "tg", 5.0)] * 30  # the CPU keeps its own ranges: not counted
    got = spreads(rows)
    assert "cpu" not in got
    assert got["metal"]["tg"] == got[POOLED]["tg"]  # 5 rows < MIN_ROWS
    low, high = got["cuda"]["tg"]
    assert 0.8 < low < high < 1.2
    assert got[POOLED]["tg"][1] > high  # metal's slow-predicted rows widen the pool


@pytest.mark.parametrize("test", ["tg", "pp"])
def test_sycl_estimates_take_the_path_the_public_rows_validate(
    cases: list[Case], test: str
) -> None:
    """`estimate --backend sycl` on PMZFX's box (an Arc Pro B70 beside a Ryzen 5 9600X) gives the
    figure the fit scores for that public row, and its range holds what the row measured."""
    catalog = load_estimate_catalog(catalog_dir())
    label = f"llama-3.1-8b Q4_K_M sycl {test}@d0 "
    (case,) = [c for c in cases if c.source == "pmzfx-b70" and c.label.startswith(label)]
    box = declare_hardware(gpus=["Intel Arc Pro B70"], cpu="Ryzen 5 9600X", ram_gib=64)
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend="sycl", ctx=4096)
    speed = estimate(request, box, catalog=catalog).speed
    figure, (low, high) = (
        (speed.tg_tps, speed.tg_tps_range) if test == "tg" else (speed.pp_tps, speed.pp_tps_range)
    )
    assert figure == pytest.approx(predict(case, catalog.backends), rel=0.01)
    assert low <= case.measured <= high


def test_sycl_on_a_gpu_of_another_vendor_is_refused() -> None:
    box = declare_hardware(gpus=["RTX 3090"], ram_gib=64)
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend="sycl")
    with pytest.raises(EstimateError, match="for Intel GPUs"):
        estimate(request, box)
