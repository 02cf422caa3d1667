"""Context as a resolution dimension: long-context workloads get the largest context that
fits without moving weights off the GPU and keeps decode at half-depth above the floor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.models.hardware import HardwareProfile
from stackctl.models.spec import StackSpec
from stackctl.resolve import Resolver, make_resolver
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.context import context_steps, grow_context
from stackctl.resources import catalog_dir


def _rtx_4090() -> HardwareProfile:
    return declare_hardware(gpus=["rtx 4090"], cpu="ryzen 9 7950x", ram_gib=64)


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return make_resolver(load_catalog(catalog_dir()))


def _context_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("context:"))


def test_steps_double_up_to_the_native_limit() -> None:
    assert context_steps(65536, 262144) == [131072, 262144]
    assert context_steps(8192, 40960) == [16384, 32768, 40960]
    assert context_steps(40960, 40960) == []


def test_agentic_grows_the_context_on_a_24gb_gpu(resolver: Resolver) -> None:
    spec = StackSpec(name="t", workload="agentic", context=65536)
    result = resolver.resolve(spec, _rtx_4090())
    r = result.resolved
    assert r.runtime.context > 65536  # more than the minimum asked
    assert r.runtime.cache_type_k == "q8_0"  # KV quantised above the policy threshold
    assert r.placement.ngl == 999  # and still fully on the GPU
    line = _context_line(result.chosen.basis)
    assert "tried 65536" in line
    assert "stopped at" in line
    est = result.chosen.estimate
    assert est is not None
    assert est.fits


def test_growth_stops_before_experts_leave_the_gpu(resolver: Resolver) -> None:
    """8 GB GPU + MoE offload: a bigger context would push more experts to system RAM.
    The MoE model is pinned: unpinned, this box now serves the dense Qwen3.5-9B whole."""
    spec = StackSpec.model_validate(
        {"name": "t", "workload": "agentic", "context": 65536,
         "pin": {"model": "qwen3.6-35b-a3b"}}
    )  # fmt: skip
    hardware = declare_hardware(gpus=["rtx 4060"], cpu="ryzen 9 7950x", ram_gib=64)
    result = resolver.resolve(spec, hardware)
    r = result.resolved
    assert r.placement.n_cpu_moe > 0  # experts of the first layers live in system RAM
    line = _context_line(result.chosen.basis)
    assert "would move weights off the GPU" in line
    stopped_at = int(line.rsplit("stopped at ", 1)[1].split(":")[0])
    assert r.runtime.context < stopped_at


def test_chat_keeps_the_stack_context(resolver: Resolver) -> None:
    spec = StackSpec(name="t", workload="chat", context=8192)
    result = resolver.resolve(spec, _rtx_4090())
    assert result.chosen.ctx == 8192
    assert "does not prefer long context" in _context_line(result.chosen.basis)


def test_a_grown_context_decides_speculative_decoding_again(resolver: Resolver) -> None:
    """A larger context is evaluated afresh: where its evaluation does not turn speculative
    decoding on, the grown stack has none (not the smaller context's plan)."""
    spec = StackSpec(name="t", workload="agentic", context=65536)
    chosen = resolver.resolve(spec, _rtx_4090()).chosen
    assert chosen.speculative is not None  # MTP on the 4090
    base = replace(chosen, ctx=65536, basis=[])

    def evaluate_without_speculative(trial: Candidate) -> None:
        trial.evaluated, trial.placement = True, base.placement  # fits, same place, no MTP

    grown = grow_context(base, spec, resolver.policy, evaluate_without_speculative,
                         lambda _c, _d: 100.0)  # fmt: skip
    assert grown.ctx > 65536
    assert grown.speculative is None


def test_context_steps_include_the_workload_minimum() -> None:
    assert context_steps(4096, 32768, 32768) == [8192, 16384, 32768]
    assert context_steps(4096, 40960, 24576) == [8192, 16384, 24576, 32768, 40960]
