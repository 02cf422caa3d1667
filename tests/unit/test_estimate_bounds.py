"""No absurd number, ever: `estimate` over random declared boxes, models, quants, contexts and
depths stays within physics, per forward pass, and never answers 0 or infinity.

The ceilings are computed here from the bytes and ops per token the estimator reports
(`speed_inputs`) and the top of every rate's span, independently of the estimator's own cap:

- decode <= tokens per step x bandwidth / bytes read per step (a speculative step reads the
  target once for all its tokens: the plain ceiling times the tokens per step bounds it);
- prefill <= peak compute / ops per token (experts in RAM beside a GPU: the copy over the host
  link per ubatch instead, as llama.cpp's op offload runs them on the GPU).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from stackctl.detect import BundleRunner, declare_hardware, detect_hardware, load_chip_table
from stackctl.detect.gpudb import gpu_db_names
from stackctl.errors import EstimateError, HardwareError
from stackctl.estimate import estimate
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.hosts import cpu_host
from stackctl.estimate.speed import (
    STAGING_PASSES,
    TTFT_PROMPT,
    DeviceSpeed,
    mean_attended,
    shown_up,
)
from stackctl.models.estimate import Backend, EstimateRequest
from stackctl.models.hardware import Accelerator, HardwareProfile
from stackctl.resources import catalog_dir

CATALOG: EstimateCatalog = load_estimate_catalog(catalog_dir())
TABLE = load_chip_table()
GPUS = sorted(gpu_db_names().values())[::7]  # a spread over the GPU database
SOCS = sorted(c.name for c in TABLE.chips if c.kind in ("apu", "soc"))
CPUS = sorted(c.name for c in TABLE.chips if c.kind == "cpu")
MODELS = sorted(m for m, e in CATALOG.models.items() if e.estimable)
QUANTS = ["Q4_K_M", "Q8_0", "Q6_K", "Q3_K_M", "Q5_K_M"]
BACKEND: dict[str, Backend] = {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "vulkan"}


@st.composite
def boxes(draw: st.DrawFn) -> tuple[HardwareProfile, Backend]:
    kind = draw(st.sampled_from(["gpu", "soc", "cpu"]))
    cpu = draw(st.none() | st.sampled_from(CPUS))
    ram = draw(st.none() | st.sampled_from([8.0, 16.0, 32.0, 64.0, 128.0, 512.0]))
    gpus = [draw(st.sampled_from(GPUS if kind == "gpu" else SOCS))] if kind != "cpu" else []
    count = draw(st.sampled_from([None, 2])) if kind == "gpu" else None
    try:
        box = declare_hardware(gpus=gpus, gpu_count=count, cpu=cpu, ram_gib=ram)
    except HardwareError:  # an SoC with its own CPU declared beside another CPU, and the like
        reject()
    backend: Backend = "cpu"
    if box.accelerators:
        backend = BACKEND[box.accelerators[0].vendor]
        if backend == "vulkan" and all(a.vendor == "intel" for a in box.accelerators):
            backend = draw(st.sampled_from(["vulkan", "sycl"]))  # Intel GPUs: both llama.cpp paths
    return box, backend


def _decode_ceiling(devices: list[DeviceSpeed], depth: int) -> float:
    seconds = 0.0
    for d in devices:
        assert d.bandwidth_gbps, f"{d.name}: no bandwidth"
        read = d.weight_bytes + d.attention_bytes(depth)
        seconds += read / (d.bandwidth_gbps * d.bw_span[1] * 1e9)
    return 1.0 / seconds


# No host link in the GPU database carries more than PCIe 5.0 x16, 63 GB/s per direction (PCI-SIG)
LINK_CEILING_GBPS = 63.0


def _prefill_ceiling(devices: list[DeviceSpeed], depth: int, memory_gbps: float | None) -> float:
    """`memory_gbps`: the host memory's own figure, which the cores may read below (a chiplet
    CPU's die links, estimate/fabric.py) but a staging copy's three passes are made over."""
    seconds = 0.0
    for d in devices:
        assert d.peak_gops, f"{d.name}: no peak compute"
        full, window = mean_attended(d, depth, TTFT_PROMPT)
        ops = d.weight_ops + d.full_ops * full + d.window_ops * window
        if d.link_ubatch:  # op offload: experts in RAM are computed on the GPU after the copy
            ops -= d.expert_ops
            # at the fastest link there is (PCIe 5.0 x16), or a third of the top of the host's
            # RAM span where the staging copy is slower; not the fitted link a prediction uses
            ram = max((d.bandwidth_gbps or 0.0) * d.bw_span[1], memory_gbps or 0.0)
            ram /= STAGING_PASSES
            link = min(LINK_CEILING_GBPS, ram) if ram else LINK_CEILING_GBPS
            seconds += d.expert_bytes_all / d.link_ubatch / (link * 1e9)
        # the fastest units any kernel has: quantised matmuls run on the int8 matrix units
        # (llama.cpp MMQ), which can beat the FP16 peak a chip is quoted at
        seconds += ops / ((d.ceiling_gops or d.peak_gops) * d.peak_span[1] * 1e9)
    return 1.0 / seconds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    box=boxes(),
    model=st.sampled_from(MODELS),
    quant=st.sampled_from(QUANTS),
    ctx=st.sampled_from([2048, 8192, 32768]),
    depth=st.sampled_from([0, 512, 4096, 16384]),
    parallel=st.sampled_from([1, 2, 4]),
)
def test_every_prediction_is_positive_and_within_physics(
    box: tuple[HardwareProfile, Backend],
    model: str,
    quant: str,
    ctx: int,
    depth: int,
    parallel: int,
) -> None:
    hardware, backend = box
    request = EstimateRequest(model=model, quant=quant, ctx=ctx * parallel, depth=depth,
                              backend=backend, parallel=parallel)  # fmt: skip
    try:
        result = estimate(request, hardware, catalog=CATALOG)
        devices = speed_inputs(request, hardware, CATALOG)
    except EstimateError:
        reject()  # a quant the model lacks, a context above its native one
    speed = result.speed
    for value in (speed.tg_tps, *speed.tg_tps_range, speed.pp_tps, *speed.pp_tps_range):
        assert math.isfinite(value)
        assert value > 0
    assert speed.tg_tps_range[0] <= speed.tg_tps <= speed.tg_tps_range[1]
    assert speed.pp_tps_range[0] <= speed.pp_tps <= speed.pp_tps_range[1]
    ceiling = _decode_ceiling(devices, depth)
    assert speed.tg_tps_range[1] <= ceiling * 1.01, (speed, ceiling)
    memory = hardware.cpu.bandwidth_high_gbps or hardware.cpu.bandwidth_gbps
    assert speed.pp_tps_range[1] <= _prefill_ceiling(devices, depth, memory) * 1.01
    # the ceilings the estimate reports (a calibration is held under them) are these bounds
    assert speed.tg_tps_ceiling
    assert speed.pp_tps_ceiling
    assert speed.tg_tps_range[1] <= speed.tg_tps_ceiling * 1.005 <= ceiling * 1.02
    assert speed.pp_tps_range[1] <= speed.pp_tps_ceiling * 1.005
    assert speed.pp_tps_ceiling <= _prefill_ceiling(devices, depth, memory) * 1.02
    assert result.memory.weights_bytes > 0


@given(st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False))
@example(0.8588375188685916)  # a 671B model's prefill on a box of unknown cores: was shown 0.9
def test_a_shown_ceiling_never_reads_below_its_bound_nor_far_above(value: float) -> None:
    shown = shown_up(value)
    assert value <= shown <= value * 1.0011  # 4 significant figures, up


@pytest.mark.parametrize(
    ("gpu", "backend"),
    [("Apple M1", "metal"), ("RTX 3070 Ti", "cuda"), ("DGX Spark", "cuda")],
)
def test_the_issue_cases_are_sane(gpu: str, backend: Backend) -> None:
    """The issue's cases: M1 once had no bandwidth (3,125,000 tok/s), 3070 Ti and GB10 no
    peak (prefill 0)."""
    system = gpu if gpu == "DGX Spark" else None
    box = declare_hardware(gpus=[] if system else [gpu], system=system)
    request = EstimateRequest(model="Llama-3.1-8B", quant="Q4_K_M", backend=backend)
    speed = estimate(request, box, catalog=CATALOG).speed
    assert 1 < speed.tg_tps < 400
    assert speed.pp_tps > 10
    assert speed.tg_tps_range[0] < speed.tg_tps < speed.tg_tps_range[1]


@pytest.mark.parametrize("vendor", ["apple", "nvidia", "amd", "intel"])
def test_a_gpu_without_figures_gets_them_from_similar_chips_and_says_so(
    vendor: Literal["apple", "nvidia", "amd", "intel"],
) -> None:
    """A detected GPU nobody has figures for (a new card, a renamed chip)."""
    unified = vendor == "apple"
    gpu = Accelerator(vendor=vendor, name="Unknown GPU 9000", memory_bytes=16 << 30,
                      unified=unified)  # fmt: skip
    box = cpu_host(8, ["avx2"], bandwidth_gbps=60.0).model_copy(update={"accelerators": [gpu]})
    backend: Backend = {"apple": "metal", "nvidia": "cuda", "amd": "rocm"}.get(vendor, "vulkan")  # type: ignore[assignment]
    request = EstimateRequest(model="Llama-3.1-8B", quant="Q4_K_M", backend=backend)
    result = estimate(request, box, catalog=CATALOG)
    speed = result.speed
    assert 1 < speed.tg_tps < 1000
    assert speed.pp_tps > 10
    assert speed.tg_tps_range[0] < speed.tg_tps < speed.tg_tps_range[1]
    assert any("bandwidth UNKNOWN for this chip" in line for line in result.basis)
    assert any("peak compute UNKNOWN for this chip" in line for line in result.basis)


def test_measured_bandwidth_is_used_and_stated() -> None:
    host = cpu_host(2, ["avx2"], bandwidth_gbps=20.0)
    host = host.model_copy(
        update={"cpu": host.cpu.model_copy(update={"bandwidth_source": "measured"})}
    )
    request = EstimateRequest(model="gemma-3-270m", quant="Q4_K_M", backend="cpu", ctx=2048)
    result = estimate(request, host, catalog=CATALOG)
    low, high = result.speed.tg_tps_range
    assert high / result.speed.tg_tps <= 1.3
    assert low / result.speed.tg_tps >= 0.7
    assert any("20 GB/s measured on this box" in line for line in result.basis)


def test_ngl_auto_on_unified_memory_keeps_every_layer_and_reports_the_shortfall() -> None:
    """Issue 14 item 7: `--ngl auto` on a unified-memory box does not pick the layer count by
    fit (one pool: the host side counts against the same budget). Every layer stays on the GPU
    and the estimate says it does not fit, with the shortfall, rather than hiding it."""
    box = declare_hardware(gpus=[], system="strix halo 32gb")
    request = EstimateRequest(model="qwen3.6-27b", quant="Q8_0", backend="vulkan")
    result = estimate(request, box, catalog=CATALOG)
    assert result.placement is not None
    assert result.placement.layers == {"gpu0": 64}
    assert not result.fits
    (row,) = result.memory.devices
    assert row.shortfall_bytes > 0
    small = estimate(request.model_copy(update={"quant": "Q3_K_M", "ctx": 2048}), box,
                     catalog=CATALOG)  # fmt: skip
    assert small.placement is not None
    assert small.placement.layers == {"gpu0": 64}


HW = Path(__file__).resolve().parents[2] / "../shared/fixtures/hw"
BUNDLES = sorted(p for p in HW.iterdir() if p.is_dir()) if HW.is_dir() else []


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_every_detected_box_gets_decode_and_prefill_with_a_range(bundle: Path) -> None:
    """Coverage: each real recorded box (its GPUs, iGPU or Apple chip, and its CPU alone)."""
    box = detect_hardware(BundleRunner(bundle))
    backends: list[Backend] = ["cpu"]
    if box.accelerators:
        backends.append(BACKEND[box.accelerators[0].vendor])
    for backend in backends:
        request = EstimateRequest(model="llama-3.2-3b", quant="Q4_K_M", backend=backend, ctx=4096)
        speed = estimate(request, box, catalog=CATALOG).speed
        assert 0 < speed.tg_tps_range[0] <= speed.tg_tps <= speed.tg_tps_range[1], backend
        assert 0 < speed.pp_tps_range[0] <= speed.pp_tps <= speed.pp_tps_range[1], backend


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    box=boxes(),
    n_draft=st.integers(1, 8),
    acceptance=st.floats(0.3, 0.95),
    depth=st.sampled_from([0, 4096]),
)
def test_speculative_decoding_stays_within_tokens_per_step_times_the_ceiling(
    box: tuple[HardwareProfile, Backend], n_draft: int, acceptance: float, depth: int
) -> None:
    """A speculative step reads the target once for all its tokens: tok/s <= tokens per step x
    bandwidth / bytes per step (the plain ceiling x tokens per step, n + 1 at most)."""
    hardware, backend = box
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend=backend, ctx=8192,
                              depth=depth, spec_type="draft", draft_model="llama-3.2-1b",
                              spec_draft_n=n_draft, spec_acceptance=acceptance)  # fmt: skip
    try:
        speed = estimate(request, hardware, catalog=CATALOG).speed
        devices = speed_inputs(request, hardware, CATALOG)
    except EstimateError:
        reject()
    ceiling = _decode_ceiling(devices, depth)
    assert speed.spec_tokens_per_step is not None
    assert 1.0 <= speed.spec_tokens_per_step <= n_draft + 1
    assert speed.tg_tps <= speed.spec_tokens_per_step * ceiling * 1.01
    assert speed.tg_tps_range[1] <= (n_draft + 1) * ceiling * 1.01
    assert speed.tg_tps_ceiling is not None
    assert speed.tg_tps_range[1] <= speed.tg_tps_ceiling * 1.005
    assert speed.tg_tps_ceiling <= speed.spec_tokens_per_step * ceiling * 1.02
    assert 0 < speed.tg_tps_range[0] <= speed.tg_tps <= speed.tg_tps_range[1]
