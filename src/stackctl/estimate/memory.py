"""KV cache, recurrent state, compute and output buffers, as llama.cpp sizes them.

Sources (llama.cpp b11434): context sizing `llama_context::llama_context` (n_ctx padded to
256; per-sequence n_ctx_seq when the KV is not unified); KV tensors `llama_kv_cache` (K and V
per layer of n_embd_{k,v}_gqa x kv_size x n_stream; MLA caches K only; V padded to the widest
layer without flash attention); SWA size `llama_kv_cache_iswa` (pad256(min(n_ctx_seq,
n_swa*(unified ? n_seq : 1) + n_ubatch))); recurrent state `llama_memory_recurrent` (f32 rows
n_embd_r + n_embd_s per sequence per recurrent layer). Compute buffers are fitted to
llama-fit-params measurements on the CPU backend (tests/data/estimate/fit_params_cpu.json,
37 cases over 15 architectures); GPU backends reuse the same formula unmeasured, which the
estimate's basis says.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.estimate.catalog import QuantCatalog
from stackctl.estimate.shape import LayerShape, ModelShape

PAD_CTX = 256
F32 = 4


@dataclass(frozen=True)
class ContextParams:
    n_ctx: int
    n_seq: int = 1
    n_ubatch: int = 512
    n_batch: int = 2048
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool = True
    kv_unified: bool = False
    swa_full: bool = False


@dataclass(frozen=True)
class CacheSizes:
    n_ctx: int  # after padding
    n_ctx_seq: int
    n_stream: int
    kv_size: int
    swa_size: int


def _pad(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def cache_sizes(shape: ModelShape, params: ContextParams) -> CacheSizes:
    n_ctx = _pad(params.n_ctx, PAD_CTX)
    if params.kv_unified:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq = _pad(n_ctx // params.n_seq, PAD_CTX)
        n_ctx, n_stream = n_ctx_seq * params.n_seq, params.n_seq
    swa = n_ctx_seq
    if shape.swa_window and not params.swa_full:
        seqs = params.n_seq if params.kv_unified else 1
        swa = _pad(min(n_ctx_seq, shape.swa_window * seqs + params.n_ubatch), PAD_CTX)
    return CacheSizes(n_ctx, n_ctx_seq, n_stream, n_ctx_seq, swa)


def row_bytes(type_name: str, n: int, quants: QuantCatalog) -> int:
    info = quants.types[type_name.upper()]
    return n // info.block * info.bytes


def layer_kv_bytes(
    layer: LayerShape, sizes: CacheSizes, params: ContextParams, quants: QuantCatalog, v_max: int
) -> int:
    """K+V bytes of one layer (0 for layers without a cache of their own)."""
    if not layer.kv_k:
        return 0
    cells = (sizes.swa_size if layer.swa else sizes.kv_size) * sizes.n_stream
    k = row_bytes(params.type_k, layer.kv_k, quants) * cells
    if layer.kind == "A":
        return k  # MLA: V is a view of the cached latent
    v_width = layer.kv_v if params.flash_attn else v_max
    return k + row_bytes(params.type_v, v_width, quants) * cells


def kv_bytes_per_layer(shape: ModelShape, params: ContextParams, quants: QuantCatalog) -> list[int]:
    sizes = cache_sizes(shape, params)
    v_max = max((layer.kv_v for layer in shape.layers), default=0)
    return [layer_kv_bytes(layer, sizes, params, quants, v_max) for layer in shape.layers]


def state_bytes_per_layer(shape: ModelShape, params: ContextParams) -> list[int]:
    """Recurrent (conv + SSM/DeltaNet) state: fixed per sequence, f32."""
    rows = max(1, params.n_seq)
    return [(layer.state_r + layer.state_s) * F32 * rows for layer in shape.layers]


def output_bytes(shape: ModelShape, params: ContextParams) -> int:
    """Logits buffer reserved at start-up: n_vocab floats per sequence (llama_context)."""
    return shape.n_vocab * F32 * max(1, params.n_seq)


@dataclass(frozen=True)
class ComputeTerms:
    """Coefficients of the CPU compute buffer, fitted to llama-fit-params (b11434, CPU, FA on).

    Gemma 3 270M Q4_K_M measured 524.53 / 262.14 / 522.53 / 551.28 MiB at (c4096 ub512),
    (c4096 ub256), (c4096 ub512 np2), (c32768 ub512): logits f32 + 6 f32 activations of
    n_embd per token + an f16 mask row per KV cell and token (full and SWA caches).
    """

    logits: float = 1.0  # x n_vocab x tokens x 4
    embd_rows: float = 6.0  # x n_embd x tokens x 4
    mask_bytes: float = 2.0  # x kv cells x tokens
    # MLA (absorbed): attention can be the peak instead of the logits. DeepSeek-V3 shapes
    # varied one fact at a time (b11434, ub 512/256, c4096/32768) moved it by 2 f32 per latent
    # dim (kv_lora_rank + rope: the absorbed query and the attention output in latent space)
    # and 1 per query dim (nope + rope) per head and token, plus 5 f32 rows of n_embd and the
    # mask: 410.02 MiB at 128 heads, c4096, ub512 (the logits' stage: 326.52).
    mla_latent: float = 2.0  # x heads x (kv_lora_rank + rope) x tokens x 4
    mla_query: float = 1.0  # x heads x (nope + rope) x tokens x 4
    mla_embd_rows: float = 5.0  # x n_embd x tokens x 4


def compute_bytes(shape: ModelShape, params: ContextParams, terms: ComputeTerms) -> int:
    """The graph allocator's peak for a worst-case ubatch (n_ubatch tokens, full KV)."""
    tokens = min(params.n_ubatch, params.n_batch)
    sizes = cache_sizes(shape, params)
    mask = 0.0
    if any(layer.kv_k and not layer.swa for layer in shape.layers):
        mask += terms.mask_bytes * sizes.kv_size * tokens
    if any(layer.kv_k and layer.swa for layer in shape.layers):
        mask += terms.mask_bytes * sizes.swa_size * tokens
    logits = (terms.logits * shape.n_vocab + terms.embd_rows * shape.n_embd) * tokens * F32
    latent = max(
        ((terms.mla_latent * layer.head_k + terms.mla_query * layer.head_q) * layer.n_head
         for layer in shape.layers if layer.kind == "A"),
        default=0.0,
    )  # fmt: skip
    attention = (latent + terms.mla_embd_rows * shape.n_embd) * tokens * F32 if latent else 0.0
    return int(max(logits, attention) + mask)
