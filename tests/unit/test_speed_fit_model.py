"""The public speed fit's parts: the bounded least squares, the part-empty expert tiles of MoE
prefill, the decode time multiplier per quant family, the prefill's passes over the attended KV,
and leave-one-source-out without leakage (a held-out source's measurements cannot move its own
predictions)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stackctl.detect import declare_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import HOST_OFFLOAD_FIELDS, load_estimate_catalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.devices import factors_source
from stackctl.estimate.expert_tiles import EXPERT_TILE, tile_padding
from stackctl.estimate.fit_terms import prefill_terms
from stackctl.estimate.public_fit import Case, leave_one_source_out, load_cases, predict
from stackctl.estimate.ridge import Prior, Row, fit_bounded
from stackctl.estimate.speed import (
    STAGING_PASSES,
    DeviceSpeed,
    Efficiency,
    decode_ceiling,
    decode_tps,
    expert_padding,
    link_rate,
    mean_attended,
    prefill_ceiling,
    prefill_tps,
    quant_family,
)
from stackctl.estimate.view import load_model_view
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml

GIB = 2**30
ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "tests/data/speed/public_llama_bench.yaml"
HARDWARE = ROOT / "tests/data/estimate/public_hardware.yaml"


def test_bounded_least_squares_solves_and_respects_bounds() -> None:
    # y = 2a + 3b measured at three points; a weak prior keeps the answer where the data put it
    rows = [Row({"a": 1.0, "b": 0.0}, 2.0), Row({"a": 0.0, "b": 1.0}, 3.0),
            Row({"a": 1.0, "b": 1.0}, 5.0)]  # fmt: skip
    loose = {n: Prior(1.0, 1e-6, 1.0, 0.0, 10.0) for n in ("a", "b")}
    x = fit_bounded(rows, loose)
    assert x["a"] == pytest.approx(2.0, rel=1e-4)
    assert x["b"] == pytest.approx(3.0, rel=1e-4)
    capped = {**loose, "b": Prior(1.0, 1e-6, 1.0, 0.0, 2.5)}
    x = fit_bounded(rows, capped)
    assert x["b"] == 2.5  # held at its bound, the rest solved again
    assert x["a"] == pytest.approx(2.25, rel=1e-3)  # rows 1 and 3 share the remainder
    # no row informs c: it stays at its prior
    x = fit_bounded(rows, {**loose, "c": Prior(4.0, 1.0, 1.0, 0.0, 10.0)})
    assert x["c"] == pytest.approx(4.0)


def _gpu_devices(model: str, quant: str, ubatch: int) -> list:  # type: ignore[type-arg]
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(gpus=[], system="strix halo 128gb")
    request = EstimateRequest(model=model, quant=quant, ctx=4096, backend="vulkan", ubatch=ubatch)
    return [d for d in speed_inputs(request, box, cat) if d.expert_share]


def test_expert_tiles_fill_with_tokens_per_expert() -> None:
    # Qwen3.6-35B-A3B: 8 of 256 experts, 16 tokens per expert in a 512-token ubatch: a quarter
    # of a tile (an expert rarely gets more than 64 of them)
    qwen = _gpu_devices("qwen3.6-35b-a3b", "Q4_K_M", 512)[0]
    assert qwen.expert_share == pytest.approx(8 / 256)
    assert expert_padding(qwen, 512) == pytest.approx(EXPERT_TILE / 16, rel=1e-6)
    # the same model in 2048-token ubatches: 64 tokens per expert on average, but about half
    # the experts get more and pay a second tile
    big = _gpu_devices("qwen3.6-35b-a3b", "Q4_K_M", 2048)[0]
    assert 1.4 < expert_padding(big, 2048) < 1.55
    assert expert_padding(big, 512) == expert_padding(qwen, 512)  # a short prompt is one ubatch
    # gpt-oss-20b: 4 of 32 experts, 64 tokens per expert already at 512: the same waste
    oss = _gpu_devices("gpt-oss-20b", "MXFP4", 512)[0]
    assert expert_padding(oss, 512) == pytest.approx(expert_padding(big, 2048), rel=0.01)


def test_the_basis_says_how_full_the_expert_tiles_are() -> None:
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(gpus=["RTX 4090"], ram_gib=64)

    def tiles(model: str, quant: str, ubatch: int) -> list[str]:
        request = EstimateRequest(model=model, quant=quant, backend="cuda", ubatch=ubatch)
        return [b for b in estimate(request, box, catalog=cat).basis if "-token tiles" in b]

    (line,) = tiles("qwen3.6-35b-a3b", "Q4_K_M", 512)
    assert "get 16 tokens each on average in a 512-token ubatch" in line
    assert "x4.00 the work" in line
    # the figure is for a 512-token prompt: a smaller ubatch splits it, a larger one cannot help
    (small,) = tiles("qwen3.6-35b-a3b", "Q4_K_M", 128)
    assert "get 4 tokens each on average in a 128-token ubatch" in small
    assert tiles("qwen3.6-35b-a3b", "Q4_K_M", 2048) == [line]
    assert tiles("llama-3.1-8b", "Q4_K_M", 512) == []  # dense: no routed experts


def test_tile_padding_is_the_binomial_expectation() -> None:
    # every token routes to the expert: no spread, the last tile part-filled
    assert tile_padding(100, 1.0) == pytest.approx(128 / 100)
    assert tile_padding(128, 1.0) == 1.0
    # one token, one expert in four: a whole tile for the quarter-token it brings on average
    assert tile_padding(1, 0.25) == pytest.approx(EXPERT_TILE)
    # two tokens at share 1/2: n = 0, 1, 2 with 1/4, 1/2, 1/4; one tile when n > 0
    assert tile_padding(2, 0.5) == pytest.approx(0.75 * EXPERT_TILE / 1.0)
    # the waste falls as the ubatch grows, towards (never below) none
    pads = [tile_padding(t, 8 / 256) for t in (512, 1024, 2048, 4096, 8192, 65536)]
    assert pads == sorted(pads, reverse=True)
    assert 1.0 < pads[-1] < 1.05


def test_quant_families_of_ggml_types() -> None:
    assert [quant_family(t) for t in ("Q4_0", "Q8_0", "Q5_1")] == ["legacy"] * 3
    assert [quant_family(t) for t in ("Q4_K", "Q6_K", "Q2_K")] == ["kquant"] * 3
    assert [quant_family(t) for t in ("IQ4_XS", "IQ2_XXS", "TQ1_0")] == ["iquant"] * 3
    assert [quant_family(t) for t in ("MXFP4", "NVFP4")] == ["fp4", "fp4"]
    assert [quant_family(t) for t in ("F16", "BF16", "F32")] == ["f16", "bf16", "f32"]


def test_quant_family_factor_slows_the_weight_read_by_its_byte_share() -> None:
    # a Q4_K_M file is K-quants but for its F32 norms; gpt-oss-20b's experts are MXFP4 and its
    # dense tensors Q8_0 (quants.yaml MXFP4_MOE)
    k = _gpu_devices("qwen3.6-35b-a3b", "Q4_K_M", 512)[0]
    assert sum(k.family_bytes.values()) == pytest.approx(k.weight_bytes)
    assert k.family_bytes["kquant"] > 0.95 * k.weight_bytes
    oss = _gpu_devices("gpt-oss-20b", "MXFP4", 512)[0]
    assert set(oss.family_bytes) >= {"fp4", "legacy"}
    plain = Efficiency(0.8, 0.25)
    slow = Efficiency(0.8, 0.25, quant={"kquant": 1.5})
    t0, t1 = (1.0 / decode_tps([k], 0, {k.backend: e}) for e in (plain, slow))
    assert k.bandwidth_gbps
    read = k.weight_bytes / (k.bandwidth_gbps * 1e9 * 0.8)
    share = k.family_bytes["kquant"] / k.weight_bytes
    assert t1 - t0 == pytest.approx(0.5 * read * share, rel=1e-9)
    # a factor for a family the file does not hold changes nothing; none can beat physics
    other = Efficiency(0.8, 0.25, quant={"bf16": 3.0})
    assert decode_tps([k], 0, {k.backend: other}) == pytest.approx(1.0 / t0)
    assert decode_tps([k], 0, {k.backend: slow}) < decode_ceiling([k], 0)


def test_offloaded_experts_cross_at_the_link_or_a_third_of_the_host_memory() -> None:
    # gpt-oss-120b with 31 layers' experts in system RAM beside a 12 GB RTX 4070 (the
    # carteakey rows): with DDR5 at 2000 MT/s (32 GB/s) the staging copy, not PCIe, sets the pace
    cat = load_estimate_catalog(catalog_dir())
    request = EstimateRequest(model="gpt-oss-120b", quant="MXFP4", ctx=4096, backend="cuda",
                              n_cpu_moe=31)  # fmt: skip
    rates = {}
    for bandwidth in (32.0, 96.0):
        box = declare_hardware(gpus=["rtx 4070"], ram_gib=64)
        assert box.cpu is not None
        cpu = box.cpu.model_copy(update={"bandwidth_gbps": bandwidth})
        box = box.model_copy(update={"cpu": cpu})
        host = next(d for d in speed_inputs(request, box, cat) if d.link_ubatch)
        assert host.expert_bytes_all > 40e9
        rates[bandwidth] = link_rate(host, host.link_gbps)
        if bandwidth == 32.0:  # the ceiling takes the staging copy at the top of the RAM span
            assert host.bw_span[1] > 1.0
            exact = replace(host, bw_span=(1.0, 1.0))
            assert prefill_ceiling([host], 0) > prefill_ceiling([exact], 0)
    share = cat.backends.backends["cpu"].host_link_efficiency
    assert share is not None
    link = share * 31.5  # the RTX 4070's own PCIe 4.0 x16
    assert rates[32.0] == pytest.approx(32.0 / STAGING_PASSES)
    assert rates[96.0] == pytest.approx(min(link, 96.0 / STAGING_PASSES))


def test_offloaded_experts_cross_at_the_gpus_own_link() -> None:
    """An Arc B580 is a PCIe 4.0 x8 card (the GPU database): its offloaded experts cross at
    half an x16 card's rate; a box that declares a PCIe 3.0 x4 slot lowers the prefill ceiling,
    and a card whose link is not known crosses at an assumed PCIe 4.0 x16."""
    from stackctl.estimate.host_link import gpu_link, link_gbps

    cat = load_estimate_catalog(catalog_dir())
    request = EstimateRequest(model="qwen3.6-35b-a3b", quant="Q4_K_M", ctx=4096, backend="sycl",
                              n_cpu_moe=22)  # fmt: skip
    box = declare_hardware(gpus=["arc b580"], cpu="core ultra 7 265k", ram_gib=96)
    card = box.accelerators[0]
    assert card.host_link == "PCIe 4.0 x8"
    assert gpu_link(card) == (15.75, f"PCIe 4.0 x8 ({card.host_link_source})")
    share = cat.backends.backends["cpu"].host_link_efficiency
    assert share is not None

    def offload_host(b: HardwareProfile) -> DeviceSpeed:
        return next(d for d in speed_inputs(request, b, cat) if d.link_ubatch)

    host = offload_host(box)
    assert host.link_peak_gbps == 15.75
    assert host.link_gbps == pytest.approx(share * 15.75)
    assert any("of the GPU's link, PCIe 4.0 x8" in line for line in host.basis)
    slot = card.model_copy(update={"host_link": "PCIe 3.0 x4", "host_link_source": "declared"})
    narrow = offload_host(box.model_copy(update={"accelerators": [slot]}))
    assert narrow.link_peak_gbps == link_gbps("PCIe 3.0 x4") == 3.94
    assert prefill_ceiling([narrow], 0) < prefill_ceiling([host], 0)
    unknown = card.model_copy(update={"host_link": None, "host_link_source": None})
    assumed = offload_host(box.model_copy(update={"accelerators": [unknown]}))
    assert assumed.link_peak_gbps == 31.5
    assert any("PCIe 4.0 x16 assumed" in line for line in assumed.basis)
    assert link_gbps("MXM-B (3.0)") is None
    assert link_gbps("IGP") is None


def test_prefill_reads_the_attended_kv_once_per_pass() -> None:
    """Flash attention streams the cache once per tile of query rows: `kv_passes` x the KV bytes
    the chunk attends to, over bandwidth, on top of the ops; the fit's term is the same figure."""
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(gpus=[], system="strix halo 128gb")
    request = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", ctx=40960, backend="vulkan")
    (gpu,) = [d for d in speed_inputs(request, box, cat) if d.layers]
    assert gpu.bandwidth_gbps
    assert gpu.full_row_bytes
    depth = 32768
    full, window = mean_attended(gpu, depth, 512)
    kv = gpu.full_row_bytes * full + gpu.window_row_bytes * window
    plain = Efficiency(0.3, 0.1)
    passes = Efficiency(0.3, 0.1, kv_passes=0.05)
    t0, t1 = (1.0 / prefill_tps([gpu], depth, {gpu.backend: e}) for e in (plain, passes))
    assert t1 - t0 == pytest.approx(0.05 * kv / (gpu.bandwidth_gbps * 1e9), rel=1e-9)
    coef, _ = prefill_terms((gpu,), depth, 512, lambda d: "x", {})
    assert coef["x:pkv"] == pytest.approx(kv / (gpu.bandwidth_gbps * 1e9), rel=1e-12)


def test_recurrent_layers_scan_each_prompt_token_in_turn() -> None:
    """A Gated DeltaNet layer's prefill costs a fixed time per prompt token (one scan step),
    in GPU cycles like decode's time per layer; the fit's term is the same figure."""
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(gpus=["RTX 3090"], ram_gib=64)
    request = EstimateRequest(model="qwen3.6-35b-a3b", quant="Q4_K_M", backend="cuda")
    (gpu,) = [d for d in speed_inputs(request, box, cat) if d.layers]
    assert gpu.scan_layers == 30  # 40 layers, every fourth one full attention
    assert gpu.layer_scale == pytest.approx(2.4 / 1.695)  # the 3090's boost clock
    plain = Efficiency(0.3, 0.1)
    scanned = Efficiency(0.3, 0.1, scan_s=1e-6)
    t0, t1 = (1.0 / prefill_tps([gpu], 0, {gpu.backend: e}) for e in (plain, scanned))
    assert t1 - t0 == pytest.approx(30 * gpu.layer_scale * 1e-6, rel=1e-9)
    coef, _ = prefill_terms((gpu,), 0, 512, lambda d: "x", {})
    assert coef["x:S"] == pytest.approx(30 * gpu.layer_scale, rel=1e-12)
    # the same tokens in any ubatch: the scan's time per token does not shrink
    big = replace(gpu, ubatch=4096)
    coef_big, _ = prefill_terms((big,), 0, 4096, lambda d: "x", {})
    assert coef_big["x:S"] == coef["x:S"]
    # a model without recurrent layers has nothing to scan
    dense = EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", backend="cuda")
    assert all(d.scan_layers == 0 for d in speed_inputs(dense, box, cat))


def test_the_basis_gives_the_scan_its_ceiling() -> None:
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(gpus=["RTX 3090"], ram_gib=64)
    step_us = cat.backends.backends["cuda-nvidia"].scan_step_us
    assert 0.1 < step_us < 20  # fitted: a step's latency chain, microseconds

    def scans(model: str) -> list[str]:
        request = EstimateRequest(model=model, quant="Q4_K_M", backend="cuda")
        return [b for b in estimate(request, box, catalog=cat).basis if "token by token" in b]

    (line,) = scans("qwen3.6-35b-a3b")
    per_token = 30 * 2.4 / 1.695 * step_us
    assert "scans 30 recurrent layers' state token by token" in line
    assert f"{per_token:.3g} us per prompt token" in line
    assert f"at most {1e6 / per_token:,.0f} tokens/s" in line
    assert scans("llama-3.1-8b") == []


def test_gpt_oss_f16_files_are_their_own_recipe() -> None:
    """gpt-oss-*-F16.gguf keeps OpenAI's MXFP4 experts and stores the rest in F16: the recipe
    gives the files' published sizes (lhl/strix-halo-testing llama-bench JSON: 12.83 and 60.87
    GiB), where the MXFP4 GGUFs are 11.27 and 59.02 (Q8_0 beside the experts)."""
    cat = load_estimate_catalog(catalog_dir())
    sizes = {}
    for model in ("gpt-oss-20b", "gpt-oss-120b"):
        for quant in ("MXFP4", "MXFP4_MOE_F16"):
            view = load_model_view(EstimateRequest(model=model, quant=quant, ctx=4096), cat)
            sizes[model, quant] = round(view.loaded_bytes() / GIB, 2)
    assert sizes == {
        ("gpt-oss-20b", "MXFP4"): 11.27,
        ("gpt-oss-20b", "MXFP4_MOE_F16"): 12.83,
        ("gpt-oss-120b", "MXFP4"): 59.02,
        ("gpt-oss-120b", "MXFP4_MOE_F16"): 60.87,
    }


def test_committed_fit_carries_quant_factors_the_estimator_reads() -> None:
    """speed_fit.yaml's multipliers reach `stackctl estimate` (fitted catalog), >= 1 each."""
    cat = load_estimate_catalog(catalog_dir())
    factors = {n: f.quant_decode_factor for n, f in cat.backends.backends.items()}
    assert any(f.get("kquant", 1.0) > 1.05 for f in factors.values())
    assert all(v >= 1.0 for f in factors.values() for v in f.values())


def test_the_host_offload_factors_that_ship_are_the_validated_ones() -> None:
    """`estimate` uses the fitted hand-over and host link that leave-one-source-out scores
    (speed_fit.yaml `cpu`), while the CPU's own factors, and the basis naming them, stay
    backends.yaml's."""
    fit = read_yaml(catalog_dir() / "speed_fit.yaml")
    plain = load_estimate_catalog(catalog_dir(), fitted=False)
    shipped = load_estimate_catalog(catalog_dir())
    cpu, hand = shipped.backends.backends["cpu"], plain.backends.backends["cpu"]
    assert "cpu" in fit["apply"]
    assert set(fit["backends"]["cpu"]) == HOST_OFFLOAD_FIELDS
    for field in HOST_OFFLOAD_FIELDS:
        assert getattr(cpu, field) == fit["backends"]["cpu"][field]
    assert cpu.host_link_efficiency != hand.host_link_efficiency  # the fit moved it
    unfitted = cpu.model_dump(exclude=set(HOST_OFFLOAD_FIELDS))
    assert unfitted == hand.model_dump(exclude=set(HOST_OFFLOAD_FIELDS))
    assert factors_source("cpu", shipped) == "catalog/backends.yaml"
    assert "cuda" in shipped.fitted_backends


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    catalog = load_estimate_catalog(catalog_dir(), fitted=False)
    return load_cases(ROWS, HARDWARE, catalog)[0]


def test_a_held_out_source_cannot_move_its_own_predictions(cases: list[Case]) -> None:
    """Scale one source's measurements by 3: its leave-one-source-out predictions stay."""
    base = load_estimate_catalog(catalog_dir(), fitted=False).backends
    held = "llamacpp-benches-dgx-spark"
    mine = [c for c in cases if c.source == held]
    others = [c for c in cases if c.source != held]
    scaled = others + [replace(c, measured=c.measured * 3.0) for c in mine]
    first = {id(s.case): s.predicted for s in leave_one_source_out(others + mine, base)}
    second = [s for s in leave_one_source_out(scaled, base) if s.case.source == held]
    for s, c in zip(second, mine, strict=True):
        assert s.predicted == pytest.approx(first[id(c)], rel=1e-9)


def test_predictions_stay_under_the_physics_ceilings(cases: list[Case]) -> None:
    """Fitted factors never push a row past bandwidth / bytes or peak / ops."""
    from stackctl.estimate.public_fit import fit
    from stackctl.estimate.speed import prefill_ceiling

    fitted = fit(cases, load_estimate_catalog(catalog_dir(), fitted=False).backends)
    share = fitted.backends["cpu"].host_link_efficiency
    assert share is not None
    assert share <= 1.0  # no copy beats its link
    for c in cases:
        devices = [replace(d, link_gbps=share * d.link_peak_gbps) if d.link_ubatch else d
                   for d in c.devices]  # fmt: skip
        ceiling = (decode_ceiling(devices, c.depth) if c.test == "tg"
                   else prefill_ceiling(devices, c.depth, prompt=c.n_prompt))  # fmt: skip
        assert 0 < predict(c, fitted) <= ceiling * (1 + 1e-9), c.label


def test_no_public_measurement_beats_the_physics_ceilings(cases: list[Case]) -> None:
    """The ceilings are physics: no measured row is faster. (They were not, once: 16 CUDA rows
    beat the FP16 tensor figure, which llama.cpp's int8 matmuls outrun, and an M4 row its
    8-core variant's figure.)"""
    from stackctl.estimate.speed import prefill_ceiling

    for c in cases:
        devices = list(c.devices)
        ceiling = (decode_ceiling(devices, c.depth) if c.test == "tg"
                   else prefill_ceiling(devices, c.depth, prompt=c.n_prompt))  # fmt: skip
        assert c.measured <= ceiling, c.label


def test_offloaded_experts_are_read_at_the_fitted_host_share() -> None:
    """A host holding experts of GPU-run layers (MoE offload) reads them at the share the public
    offload rows fit (speed_fit.yaml `cpu` offload_decode_efficiency); a CPU running the whole
    model keeps backends.yaml's share, and a bandwidth measured on the box its measured share."""
    from stackctl.estimate.speed import decode_efficiencies, weight_read_seconds

    factors = load_estimate_catalog(catalog_dir()).backends.backends
    cpu = factors["cpu"]
    assert cpu.offload_decode_efficiency is not None
    assert cpu.measured_decode_efficiency is not None
    assert cpu.offload_decode_efficiency != cpu.decode_efficiency
    host = DeviceSpeed("host", 50.0, None, "cpu", weight_bytes=1e9, split_layers=34)
    whole = replace(host, split_layers=0)
    stated, _, _ = decode_efficiencies(factors, set())
    measured, _, _ = decode_efficiencies(factors, {"cpu"})
    seconds = 1e9 / 50e9
    assert weight_read_seconds(host, stated["cpu"]) == pytest.approx(
        seconds / cpu.offload_decode_efficiency
    )
    assert weight_read_seconds(whole, stated["cpu"]) == pytest.approx(
        seconds / cpu.decode_efficiency
    )
    assert weight_read_seconds(host, measured["cpu"]) == pytest.approx(
        seconds / cpu.measured_decode_efficiency
    )


def test_the_fit_gives_offloaded_experts_their_own_host_share(cases: list[Case]) -> None:
    """In the fit, an offload row's host read is the host's parameter (host:iw), a CPU row's
    the CPU's own (cpu:iw), and the share fitted lies between the CPU's figure and physics."""
    from stackctl.estimate.fit_terms import decode_terms, inverse_factors
    from stackctl.estimate.public_fit import fit

    base = load_estimate_catalog(catalog_dir(), fitted=False).backends
    x = {**inverse_factors("cpu", base.backends["cpu"]),
         **inverse_factors("cuda", base.backends["cuda"]), "host:iw": 1.0}  # fmt: skip
    offload = next(c for c in cases if c.offload and c.test == "tg")
    alone = next(c for c in cases if c.backend == "cpu" and c.test == "tg")
    owner = lambda d: "cpu" if d.backend == "cpu" else "cuda"  # noqa: E731
    coef, _ = decode_terms(offload.devices, offload.depth, owner, x)
    assert coef.get("host:iw", 0.0) > 0
    assert "cpu:iw" not in coef
    coef, _ = decode_terms(alone.devices, alone.depth, owner, x)
    assert "host:iw" not in coef
    share = fit(cases, base).backends["cpu"].offload_decode_efficiency
    assert share is not None
    assert base.backends["cpu"].decode_efficiency < share <= 1.0
