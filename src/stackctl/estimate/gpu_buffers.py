"""Compute buffers of a GPU backend (CUDA/ROCm, Metal, Vulkan) and of the host beside it.

The CPU formula (memory.ComputeTerms) adds its terms up: it was fitted to llama-fit-params on
the CPU. A GPU graph allocator reuses memory between the output and the layers, so its peak is
the larger of two live sets, per ubatch of t = min(n_ubatch, n_batch, n_ctx) tokens:

  both       the KQ mask, a graph input live throughout: kv cells x t, f16 with flash
             attention, f32 without
  output     + logits f32 (n_vocab x t) + one f32 row of n_embd per token
  attention  + the f32 KQ scores (n_head x kv cells x t) without flash attention, the FFN's
             f32 intermediate (its width x t) and `attn_rows` f32 rows of n_embd

The host side of a run with every layer on the GPU holds the graph inputs only: the token
embeddings (f32, n_embd x t) and the f32 KQ mask (kv cells x t), with nothing fitted.

Fitted and checked against the compute buffers llama.cpp printed in public logs
(tests/data/speed/gpu_compute_buffers.yaml: ggml-org/ci CUDA V100 and Metal M4 runs;
tests/data/estimate/gpu_compute_issue_logs.yaml: logs posted in issues):
`.venv/bin/python benchmarks/gpu_compute_vs_logs.py` prints each row and the errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.estimate.memory import F32, ContextParams, cache_sizes
from stackctl.estimate.shape import ModelShape
from stackctl.estimate.view import ModelView

F16 = 2


@dataclass(frozen=True)
class GpuComputeTerms:
    # median over the public rows where the attention set is the larger (the benchmark
    # prints it and its leave-one-out error); the only fitted number
    attn_rows: float = 1.31


GPU_COMPUTE = GpuComputeTerms()


def ubatch_tokens(params: ContextParams) -> int:
    return max(1, min(params.n_ubatch, params.n_batch, params.n_ctx))


def mask_cells(shape: ModelShape, params: ContextParams) -> int:
    """KV cells a mask row spans: the full cache, plus the SWA cache where there is one."""
    sizes = cache_sizes(shape, params)
    full = any(layer.kv_k and not layer.swa for layer in shape.layers)
    swa = any(layer.kv_k and layer.swa for layer in shape.layers)
    return (sizes.kv_size if full else 0) + (sizes.swa_size if swa else 0)


def gpu_compute_bytes(
    shape: ModelShape, params: ContextParams, ffn_width: int, terms: GpuComputeTerms = GPU_COMPUTE
) -> int:
    t = ubatch_tokens(params)
    cells = mask_cells(shape, params)
    # the KQ mask is a graph input and counted in both sets. The public rows (2024-25 builds)
    # show it freed before the logits (+0-6 % here); kept so that long contexts, where the
    # mask grows past the logits, are not under-counted
    mask = cells * t * (F16 if params.flash_attn else F32)
    output = (shape.n_vocab + shape.n_embd) * t * F32 + mask
    scores = 0
    if not params.flash_attn:
        heads = max((layer.n_head for layer in shape.layers if layer.kv_k), default=0)
        scores = heads * cells * t * F32
    attention = mask + scores + ffn_width * t * F32 + terms.attn_rows * shape.n_embd * t * F32
    return int(max(output, attention))


def host_compute_bytes(shape: ModelShape, params: ContextParams) -> int:
    """The host buffer of a fully offloaded run: the graph's inputs, not its work."""
    t = ubatch_tokens(params)
    return (shape.n_embd + mask_cells(shape, params)) * t * F32


def ffn_width(view: ModelView) -> int:
    """Elements per token of the widest FFN intermediate: a dense layer's n_ff, or an MoE
    layer's routed experts (experts used x expert width) plus its shared expert."""
    known: int | None = view.derived.get("ffn_width")
    if known is None:
        known = view.derived["ffn_width"] = _ffn_width(view)
    return known


def _ffn_width(view: ModelView) -> int:
    widest = 0
    used = max(1, view.shape.n_expert_used)
    per_layer: dict[str, int] = {}
    for t in view.tensors:
        parts = t.name.split(".")
        if len(parts) < 4 or parts[0] != "blk" or len(t.shape) < 2:
            continue
        name, layer = parts[2], parts[1]
        if name == "ffn_up":
            per_layer[layer] = per_layer.get(layer, 0) + t.shape[1]
        elif name == "ffn_up_exps":
            per_layer[layer] = per_layer.get(layer, 0) + t.shape[1] * used
        elif name == "ffn_up_shexp":
            per_layer[layer] = per_layer.get(layer, 0) + t.shape[1]
    for width in per_layer.values():
        widest = max(widest, width)
    return widest
