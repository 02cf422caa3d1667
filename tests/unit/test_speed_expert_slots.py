"""Decode pays a fixed time per routed expert a token uses, per MoE layer, on a backend that
dispatches each expert's matrix-vector product on its own (BackendFactors.expert_slot_ms,
fitted on the public rows): DeviceSpeed.expert_slots counts those experts where they are read,
and a dense model has none."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackctl.detect import declare_hardware
from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.speed import DeviceSpeed, Efficiency, decode_tps, verify_devices
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir

CATALOG = load_estimate_catalog(catalog_dir())
# Qwen3-30B-A3B: 48 layers, each with 128 routed experts of which 8 are used per token
MOE_LAYERS, USED, EXPERTS = 48, 8, 128


def _devices(model: str, n_cpu_moe: int = 0) -> tuple[DeviceSpeed, DeviceSpeed]:
    """(the GPU, the host) of an RTX 4090 box."""
    box = declare_hardware(gpus=["RTX 4090"], ram_gib=64)
    request = EstimateRequest(model=model, quant="Q4_K_M", backend="cuda", n_cpu_moe=n_cpu_moe)
    gpu, host = speed_inputs(request, box, CATALOG)
    assert (gpu.name, host.name) == ("gpu0", "host")
    return gpu, host


def _gpu(model: str) -> DeviceSpeed:
    return _devices(model)[0]


def test_every_moe_layer_counts_the_experts_a_token_uses() -> None:
    gpu, host = _devices("qwen3-30b-a3b")
    assert gpu.expert_slots == MOE_LAYERS * USED
    assert host.expert_slots == 0
    assert _gpu("Llama-3.1-8B").expert_slots == 0


def test_experts_left_in_ram_count_on_the_host() -> None:
    gpu, host = _devices("qwen3-30b-a3b", n_cpu_moe=20)
    assert host.expert_slots == 20 * USED
    assert gpu.expert_slots == (MOE_LAYERS - 20) * USED


def test_the_dispatch_time_adds_per_expert_used() -> None:
    gpu = _gpu("qwen3-30b-a3b")
    grouped = Efficiency(0.9, 0.3, kv=0.8, layer_s=1e-4)
    per_expert = replace(grouped, expert_s=2e-5)
    slow = 1.0 / decode_tps([gpu], 0, {gpu.backend: per_expert})
    fast = 1.0 / decode_tps([gpu], 0, {gpu.backend: grouped})
    assert slow - fast == pytest.approx(MOE_LAYERS * USED * 2e-5)
    dense = _gpu("Llama-3.1-8B")
    with_cost = decode_tps([dense], 0, {dense.backend: per_expert})
    assert with_cost == decode_tps([dense], 0, {dense.backend: grouped})


def test_a_verify_pass_dispatches_every_distinct_expert_its_tokens_route_to() -> None:
    gpu = _gpu("qwen3-30b-a3b")
    (one,) = verify_devices([gpu], 1)
    assert one.expert_slots == pytest.approx(gpu.expert_slots)
    (many,) = verify_devices([gpu], 4)
    distinct = 1.0 - (1.0 - USED / EXPERTS) ** 4
    assert many.expert_slots == pytest.approx(MOE_LAYERS * EXPERTS * distinct)
    (all_of_them,) = verify_devices([gpu], 10_000)
    assert all_of_them.expert_slots == pytest.approx(MOE_LAYERS * EXPERTS)


def test_the_fitted_cost_is_never_negative_and_zero_where_one_kernel_runs_them() -> None:
    factors = CATALOG.backends.backends
    assert all(f.expert_slot_ms >= 0 for f in factors.values())
    assert factors["cuda"].expert_slot_ms == 0  # mmvq with ids: one grouped kernel
    assert factors["sycl"].expert_slot_ms > 0  # the public SYCL rows pay per expert


def test_the_basis_says_where_experts_are_dispatched_one_by_one() -> None:
    def basis(gpu: str) -> list[str]:
        box = declare_hardware(gpus=[gpu], ram_gib=64)
        request = EstimateRequest(model="qwen3-30b-a3b", quant="Q4_K_M", backend="vulkan")
        lines = estimate(request, box, catalog=CATALOG).basis
        return [b for b in lines if "routed experts used" in b]

    (line,) = basis("Arc Pro B70")
    assert line.startswith(f"speed gpu0: {MOE_LAYERS * USED} routed experts used per token")
    assert basis("RTX 4090") == []  # Vulkan on NVIDIA: one grouped kernel, no such cost
