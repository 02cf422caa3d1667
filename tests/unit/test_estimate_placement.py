"""Estimator: placement (-ot, -ts, --n-cpu-moe auto), companions, speculative speed, engines."""

from __future__ import annotations

import pytest

from stackctl.detect import declare_hardware
from stackctl.errors import EstimateError
from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.hosts import cpu_host
from stackctl.estimate.speed import DeviceSpeed, speculative_tps, verify_devices
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.models.hardware import (
    Accelerator,
    CpuInfo,
    HardwareProfile,
    MemoryInfo,
    OsInfo,
    Vendor,
)
from stackctl.resources import catalog_dir

GIB = 1 << 30


@pytest.fixture(scope="module")
def cat() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


def gpu_host(
    n_gpu: int = 1, vram_gib: int = 24, ram_gib: int = 64, *, unified: bool = False,
    vendor: Vendor = "nvidia", system: str = "linux",
) -> HardwareProfile:  # fmt: skip
    accs = [
        Accelerator(
            vendor=vendor,
            name="test gpu",
            memory_bytes=vram_gib * GIB,
            bandwidth_gbps=1000.0,
            unified=unified,
        )
        for _ in range(n_gpu)
    ]
    return HardwareProfile(
        name="t",
        cpu=CpuInfo(arch="x86_64", cores=8, threads=16, flags=["avx2"], bandwidth_gbps=80.0),
        memory=MemoryInfo(total_bytes=ram_gib * GIB, available_bytes=ram_gib * GIB),
        accelerators=accs,
        os=OsInfo(system=system),
    )


def run(cat: EstimateCatalog, hw: HardwareProfile, **kw: object) -> Estimate:
    defaults: dict[str, object] = {"quant": "Q4_K_M", "ctx": 8192, "backend": "cuda"}
    return estimate(EstimateRequest(**{**defaults, **kw}), hw, catalog=cat)  # type: ignore[arg-type]


def test_override_tensor_moves_ffn_to_cpu(cat: EstimateCatalog) -> None:
    base = run(cat, gpu_host(), model="llama-3.1-8b", ngl=33)
    moved = run(cat, gpu_host(), model="llama-3.1-8b", ngl=33, override_tensor=[r"ffn_.*=CPU"])
    gpu, host = moved.memory.devices
    assert gpu.weights_bytes < base.memory.devices[0].weights_bytes / 2
    assert host.weights_bytes > base.memory.devices[1].weights_bytes
    assert moved.memory.weights_bytes == base.memory.weights_bytes
    assert moved.placement is not None
    assert moved.placement.override_tensor == [r"ffn_.*=CPU"]


def test_override_tensor_bad_buffer(cat: EstimateCatalog) -> None:
    with pytest.raises(EstimateError, match="unknown buffer type"):
        run(cat, gpu_host(), model="llama-3.1-8b", override_tensor=["ffn=CUDA3"])
    with pytest.raises(EstimateError, match="expected"):
        run(cat, gpu_host(), model="llama-3.1-8b", override_tensor=["ffn"])


def test_tensor_split(cat: EstimateCatalog) -> None:
    result = run(cat, gpu_host(2), model="llama-3.1-8b", ngl=33, tensor_split=[3.0, 1.0])
    assert result.placement is not None
    assert result.placement.layers == {"gpu0": 24, "gpu1": 8}
    with pytest.raises(EstimateError, match="tensor-split"):
        run(cat, gpu_host(2), model="llama-3.1-8b", tensor_split=[1.0])


def test_n_cpu_moe_auto_is_the_smallest_that_fits(cat: EstimateCatalog) -> None:
    hw = gpu_host(ram_gib=192)
    auto = run(cat, hw, model="qwen3-235b-a22b", ctx=16384, n_cpu_moe="auto")
    assert auto.fits
    assert auto.placement is not None
    n = auto.placement.n_cpu_moe
    assert 0 < n < 94
    fewer = run(cat, hw, model="qwen3-235b-a22b", ctx=16384, ngl=95, n_cpu_moe=n - 1)
    assert not fewer.fits
    assert fewer.memory.devices[0].shortfall_bytes > 0


def test_mtp_head_loads_and_speeds_up_decode(cat: EstimateCatalog) -> None:
    hw = gpu_host(vram_gib=48)
    plain = run(cat, hw, model="qwen3.6-27b")
    mtp = run(cat, hw, model="qwen3.6-27b", spec_type="mtp", spec_draft_n=2, spec_acceptance=0.8)
    assert mtp.memory.draft_bytes > 0
    assert mtp.memory.total_bytes == plain.memory.total_bytes + mtp.memory.draft_bytes
    assert mtp.speed.tg_tps_plain == plain.speed.tg_tps
    assert mtp.speed.tg_tps > plain.speed.tg_tps
    assert mtp.speed.spec_tokens_per_step == pytest.approx(2.44)
    with pytest.raises(EstimateError, match="no MTP"):
        run(cat, hw, model="llama-3.1-8b", spec_type="mtp")


def test_draft_model_memory(cat: EstimateCatalog) -> None:
    hw = gpu_host()
    plain = run(cat, hw, model="llama-3.1-8b")
    draft = run(cat, hw, model="llama-3.1-8b", spec_type="draft", draft_model="llama-3.2-1b")
    one_b = run(cat, hw, model="llama-3.2-1b", quant="Q8_0")
    # the draft's weights and its f16 KV at the same context, on the main GPU
    assert draft.memory.draft_bytes > one_b.memory.weights_bytes + one_b.memory.kv_bytes
    assert draft.memory.devices[0].total_bytes > plain.memory.devices[0].total_bytes
    with pytest.raises(EstimateError, match="draft model"):
        run(cat, hw, model="llama-3.1-8b", spec_type="draft")


def test_mmproj_on_first_gpu(cat: EstimateCatalog) -> None:
    result = run(cat, gpu_host(), model="gemma-3-4b", mmproj_bytes=800 << 20)
    assert result.memory.mmproj_bytes == 800 << 20
    off = run(cat, gpu_host(), model="gemma-3-4b", mmproj_bytes=800 << 20, mmproj_offload=False)
    assert off.memory.devices[0].weights_bytes == result.memory.devices[0].weights_bytes - (
        800 << 20
    )


def test_speculative_formula() -> None:
    tps, tokens = speculative_tps(t_draft=0.0, t_verify=0.01, n_draft=2, acceptance=0.8)
    assert tokens == pytest.approx((1 - 0.8**3) / 0.2)
    assert tps == pytest.approx(tokens / 0.01)


def test_verify_reads_more_experts() -> None:
    dev = DeviceSpeed("gpu0", 1000.0, None, "cuda", weight_bytes=1e9 + 0.25e9,
                      expert_bytes_all=8e9, expert_share=1 / 32)  # fmt: skip
    one, three = verify_devices([dev], 1)[0], verify_devices([dev], 3)[0]
    assert one.weight_bytes == pytest.approx(dev.weight_bytes)
    assert three.weight_bytes == pytest.approx(1e9 + 8e9 * (1 - (31 / 32) ** 3))


def test_assumed_cpu_bandwidth_is_flagged(cat: EstimateCatalog) -> None:
    hw = cpu_host(2, ["avx2"], memory_bytes=8 * GIB)
    result = estimate(EstimateRequest(model="gemma-3-270m", quant="Q4_K_M"), hw, catalog=cat)
    assert any("ASSUMED" in line for line in result.basis)
    low, high = result.speed.tg_tps_range
    assert high / low > 3.5  # efficiency spread 0.4-0.8 times the assumption's x0.5-x2
    known = hw.model_copy(update={"cpu": hw.cpu.model_copy(update={"bandwidth_gbps": 20.0})})
    measured = estimate(EstimateRequest(model="gemma-3-270m", quant="Q4_K_M"), known, catalog=cat)
    assert not any("ASSUMED" in line for line in measured.basis)


def test_few_threads_may_pull_up_to_the_memory_figure(cat: EstimateCatalog) -> None:
    # 2 threads of a 16-core box with 64 GB/s: the per-core assumption (2 x 12 GB/s) is the
    # figure, but physics caps the range at the memory's 64 GB/s, not at twice the assumption
    hw = cpu_host(16, ["avx2"], bandwidth_gbps=64.0, memory_bytes=64 * GIB)
    result = estimate(EstimateRequest(model="llama-3.1-8b", quant="BF16", threads=2), hw,
                      catalog=cat)  # fmt: skip
    assert any("ASSUMED" in line and "x0.5-x2.7" in line for line in result.basis)
    read = 15.0e9  # BF16 Llama 3.1 8B less the embedding table, per token
    assert result.speed.tg_tps_range[1] <= 64e9 / read
    assert result.speed.tg_tps_range[1] > 2 * 2 * 12e9 / read * 0.8  # above 2x the assumption


def test_vllm_pool(cat: EstimateCatalog) -> None:
    hw = gpu_host(vram_gib=80)
    result = run(cat, hw, model="llama-3.1-8b", quant="BF16", engine="vllm", ctx=32768)
    gpu = result.memory.devices[0]
    assert gpu.budget_bytes == int(0.92 * 80 * GIB)
    assert result.fits
    assert result.memory.kv_capacity_tokens is not None
    assert result.memory.kv_capacity_tokens > 32768
    tight = run(cat, hw, model="llama-3.1-70b", quant="BF16", engine="vllm")
    assert not tight.fits
    with pytest.raises(EstimateError, match="needs a GPU"):
        run(cat, gpu_host(0), model="llama-3.1-8b", engine="vllm", backend="cpu")


def test_mlx_and_ds4(cat: EstimateCatalog) -> None:
    mac = gpu_host(vram_gib=128, unified=True, vendor="apple", system="darwin")
    mlx = run(cat, mac, model="qwen3-30b-a3b", quant="MLX-4bit", engine="mlx", backend="metal")
    assert mlx.fits
    assert mlx.memory.compute_bytes == 0
    ds4 = run(cat, mac, model="deepseek-v4-flash", quant="q2", engine="ds4", backend="metal")
    assert ds4.memory.weights_bytes == 81_000_000_000
    with pytest.raises(EstimateError, match="only DeepSeek"):
        run(cat, mac, model="qwen3-30b-a3b", engine="ds4", backend="metal")


def test_gemma4_shared_kv_layers_own_no_cache(cat: EstimateCatalog) -> None:
    result = estimate(
        EstimateRequest(model="gemma-4-e2b", quant="Q4_K_M", ctx=8192),
        gpu_host(0),
        catalog=cat,
    )
    # 15 of 35 layers own a cache (models.md section 5): 3 full x (1 x 512 x 2) at 8192 cells,
    # 12 SWA x (1 x 256 x 2) at pad256(512 + 512) cells, f16
    assert result.memory.kv_bytes == 3 * 1024 * 2 * 8192 + 12 * 512 * 2 * 1024


def test_a_core_design_with_a_published_figure_sets_what_few_threads_pull(
    cat: EstimateCatalog,
) -> None:
    # A declared Ryzen 9 7950X is a desktop Zen 4 chip: 1 thread reads 50 GB/s (Chips and
    # Cheese's single-core figure), below the memory's 83.2 GB/s, not the 12 GB/s per-core
    # assumption; the basis names the design and is no longer ASSUMED. 2 threads reach the memory.
    hw = declare_hardware(gpus=[], cpu="Ryzen 9 7950X", ram_gib=64)
    assert hw.cpu.core == "zen4-desktop"
    one, two = (estimate(EstimateRequest(model="llama-3.1-8b", quant="BF16", threads=n), hw,
                         catalog=cat) for n in (1, 2))  # fmt: skip
    host = [line for line in one.basis if "per zen4-desktop core" in line]
    assert host
    assert "1 thread x 50 GB/s" in host[0]
    assert "below the memory's 83.2" in host[0]
    assert not any("ASSUMED" in line for line in one.basis + two.basis)
    assert any("83 GB/s" in line for line in two.basis)
    read = 15.0e9  # BF16 Llama 3.1 8B less the embedding table, per token
    assert one.speed.tg_tps_range[1] <= 83.2e9 / read
    unknown = hw.model_copy(update={"cpu": hw.cpu.model_copy(update={"core": None})})
    assumed = estimate(EstimateRequest(model="llama-3.1-8b", quant="BF16", threads=1), unknown,
                       catalog=cat)  # fmt: skip
    assert any("ASSUMED" in line for line in assumed.basis)
    assert one.speed.tg_tps > 3 * assumed.speed.tg_tps  # 50 vs 12 GB/s
