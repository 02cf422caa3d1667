"""GPU compute buffers (issue 14 item 7): the estimate on a GPU backend uses the GPU formula and,
for a fully offloaded run, an inputs-only host buffer; both checked against buffers llama.cpp
printed in public logs. And `--ngl auto` on unified memory (Apple, Strix Halo): the fit check
does not choose the layer count there, and the shortfall is reported, not hidden.
"""

from __future__ import annotations

import pytest

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.models.estimate import EstimateRequest
from stackctl.models.spec import StackSpec
from stackctl.resolve import make_resolver
from stackctl.resources import catalog_dir

CATALOG: EstimateCatalog = load_estimate_catalog(catalog_dir())
MIB = 1 << 20
RTX = declare_hardware(gpus=["RTX 4090"], ram_gib=64)


def _llama2(ctx: int, *, flash_attn: bool, **extra: object) -> EstimateRequest:
    # ggml-org/ci's open_llama_7b_v2 has Llama 2 7B's shapes (tests/data/speed/
    # gpu_compute_buffers.yaml); the buffers do not depend on the weights' type
    return EstimateRequest(model="llama-2-7b", quant="Q4_0", backend="cuda", ctx=ctx,
                           ubatch=512, batch=2048, flash_attn=flash_attn, **extra)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(("ctx", "logged"), [(512, 70.5), (2048, 164.0)])
def test_gpu_compute_matches_the_logged_ci_buffers(ctx: int, logged: float) -> None:
    """ggml-org/ci@c2d03e2a, open_llama_7b_v2 on a V100, -ngl 99, no flash attention."""
    gpu, host = estimate(_llama2(ctx, flash_attn=False), RTX, catalog=CATALOG).memory.devices
    assert gpu.compute_bytes / MIB == pytest.approx(logged, rel=0.02)
    # host side of a full offload: the inputs only, 9.01 / 12.01 MiB in the same logs
    assert host.compute_bytes / MIB == pytest.approx({512: 9.01, 2048: 12.01}[ctx], rel=0.01)


def test_the_cpu_formula_stays_where_the_cpu_runs_layers() -> None:
    full = estimate(_llama2(2048, flash_attn=True), RTX, catalog=CATALOG)
    part = estimate(_llama2(2048, flash_attn=True, ngl=16), RTX, catalog=CATALOG)
    cpu_only = estimate(_llama2(2048, flash_attn=True).model_copy(update={"backend": "cpu"}),
                        RTX, catalog=CATALOG)  # fmt: skip
    host_full = full.memory.devices[-1].compute_bytes
    host_part = part.memory.devices[-1].compute_bytes
    assert host_part == cpu_only.memory.devices[-1].compute_bytes  # the CPU formula
    assert host_full < host_part / 5  # inputs only: embeddings + mask


def test_without_flash_attention_the_scores_grow_with_the_context() -> None:
    """The KQ scores (n_head x cells x t, f32) dominate at long context without FA: logged
    2144 MiB for Mistral 7B at n_ctx 32768 (fedora-copr/logdetective#106); the CPU formula,
    fitted with FA on, would say ~140."""
    long = estimate(_llama2(4096, flash_attn=False), RTX, catalog=CATALOG).memory.devices[0]
    fa = estimate(_llama2(4096, flash_attn=True), RTX, catalog=CATALOG).memory.devices[0]
    scores = 32 * 4096 * 512 * 4
    assert long.compute_bytes >= scores
    assert fa.compute_bytes < scores / 2


def test_ngl_auto_on_apple_unified_memory_keeps_every_layer_and_reports_the_shortfall() -> None:
    """Metal (unified): `--ngl auto` does not choose the layer count by fit. Every layer stays on
    the GPU and the estimate says it does not fit, by how much, rather than offloading."""
    mac = declare_hardware(gpus=["Apple M4 Max"], ram_gib=36)
    request = EstimateRequest(model="qwen3.6-27b", quant="Q8_0", backend="metal", ngl="auto",
                              ctx=131072)  # fmt: skip
    result = estimate(request, mac, catalog=CATALOG)
    assert result.placement is not None
    assert result.placement.layers == {"gpu0": 64}
    assert not result.fits
    (row,) = result.memory.devices
    assert row.shortfall_bytes > 0


def test_the_resolver_rejects_what_does_not_fit_unified_memory() -> None:
    """The plan never takes a partial offload on unified memory for a fit: too large is
    rejected with its shortfall."""
    resolver = make_resolver(load_catalog(catalog_dir()))
    spec = StackSpec.model_validate({"name": "t", "workload": "chat", "context": 262144})
    result = resolver.resolve(spec, declare_hardware(gpus=["Apple M4 Max"], ram_gib=36), top=12)
    big = [c for c in result.rejected
           if c.entry.id == "qwen3.6-27b" and c.artefact.quant == "Q8_0"]  # fmt: skip
    assert big
    assert all((c.reject or "").startswith("does not fit") for c in big)
    assert all(c.placement.ngl > c.entry.n_layer for c in big)  # every layer: no partial offload
