"""Shape-only GGUF files: the real metadata and tensor table, a sparse hole for the weights.

llama.cpp loads such a file with `no_alloc` (llama-fit-params) without reading a byte of
weight data, so its memory accounting can be checked for models we never download. The
vocabulary is `tokenizer.ggml.model = "none"` with `<arch>.vocab_size` (llama-vocab.cpp adds
dummy tokens). Layout: docs/gguf.md v3, 32-byte alignment.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from stackctl.estimate.catalog import EstimateCatalog, ModelEntry
from stackctl.estimate.recipe import TypedTensor, typed_layout

ALIGN = 32
_U32, _I32, _F32, _BOOL, _STR, _ARR, _U64 = 4, 5, 6, 7, 8, 9, 10


def _pack_str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return struct.pack("<I?", _BOOL, value)
    if isinstance(value, int):
        return struct.pack("<Ii", _I32, value) if value < 0 else struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return struct.pack("<If", _F32, value)
    if isinstance(value, str):
        return struct.pack("<I", _STR) + _pack_str(value)
    if isinstance(value, list):
        if value and isinstance(value[0], bool):
            return struct.pack("<IIQ", _ARR, _BOOL, len(value)) + b"".join(
                struct.pack("<?", v) for v in value
            )
        return struct.pack("<IIQ", _ARR, _I32, len(value)) + b"".join(
            struct.pack("<i", int(v)) for v in value
        )
    raise TypeError(f"cannot write metadata value {value!r}")


def write_shape_gguf(
    path: Path, metadata: dict[str, Any], tensors: list[TypedTensor], catalog: EstimateCatalog
) -> int:
    """Write the header and extend the file to its full size as a hole; returns the size."""
    header = bytearray(b"GGUF")
    header += struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, value in metadata.items():
        header += _pack_str(key) + _pack_value(value)
    offset = 0
    for t in tensors:
        header += _pack_str(t.name) + struct.pack("<I", len(t.shape))
        header += b"".join(struct.pack("<Q", d) for d in t.shape)
        header += struct.pack("<IQ", catalog.quants.types[t.type].id, offset)
        offset += (t.nbytes + ALIGN - 1) // ALIGN * ALIGN
    data_start = (len(header) + ALIGN - 1) // ALIGN * ALIGN
    header += b"\0" * (data_start - len(header))
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(data_start + offset)
    return data_start + offset


def _ssm_keys(entry: ModelEntry, arch: str) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if entry.gdn:
        gdn = entry.gdn
        keys.update({
            f"{arch}.ssm.conv_kernel": gdn.conv_kernel,
            f"{arch}.ssm.state_size": gdn.key_dim,
            f"{arch}.ssm.group_count": gdn.key_heads,
            f"{arch}.ssm.time_step_rank": gdn.value_heads,
            f"{arch}.ssm.inner_size": gdn.value_heads * gdn.value_dim,
            f"{arch}.full_attention_interval": len(entry.layer_pattern),
        })  # fmt: skip
    if entry.mamba:
        m = entry.mamba
        keys.update({
            f"{arch}.ssm.conv_kernel": m.conv_kernel,
            f"{arch}.ssm.state_size": m.state,
            f"{arch}.ssm.group_count": m.groups,
            f"{arch}.ssm.time_step_rank": m.heads,
            f"{arch}.ssm.inner_size": m.heads * m.head_dim,
        })  # fmt: skip
    if entry.shortconv_l_cache:
        keys[f"{arch}.shortconv.l_cache"] = entry.shortconv_l_cache
    return keys


def _per_layer_keys(entry: ModelEntry, arch: str) -> dict[str, Any]:
    """LFM2 and Nemotron-H mark recurrent/MLP layers with per-layer head_count_kv / ffn."""
    kinds = entry.layer_kinds()
    if arch in ("lfm2", "lfm2moe"):
        return {
            f"{arch}.attention.head_count_kv": [0 if k == "C" else entry.n_head_kv for k in kinds],
            f"{arch}.feed_forward_length": entry.ffn or (entry.moe.dense_ffn if entry.moe else 0),
        }
    if arch.startswith("nemotron_h"):
        return {
            f"{arch}.attention.head_count_kv": [entry.n_head_kv if k == "F" else 0 for k in kinds],
            f"{arch}.feed_forward_length": [
                entry.ffn if k == "-" else (entry.moe.expert_ffn if entry.moe and k == "E" else 0)
                for k in kinds
            ],
        }
    return {
        f"{arch}.attention.head_count_kv": entry.n_head_kv,
        f"{arch}.feed_forward_length": entry.ffn or (entry.moe.dense_ffn if entry.moe else 0),
    }


def _moe_keys(entry: ModelEntry, arch: str) -> dict[str, Any]:
    moe = entry.moe
    if moe is None:
        return {}
    keys: dict[str, Any] = {
        f"{arch}.expert_count": moe.experts,
        f"{arch}.expert_used_count": moe.experts_used,
        f"{arch}.expert_feed_forward_length": moe.expert_ffn,
        f"{arch}.leading_dense_block_count": moe.dense_lead_layers,
    }
    if moe.shared_experts:
        keys[f"{arch}.expert_shared_count"] = moe.shared_experts
        keys[f"{arch}.expert_shared_feed_forward_length"] = moe.shared_ffn or moe.expert_ffn
    if arch in ("deepseek2", "glm4moe", "lfm2moe"):
        keys[f"{arch}.expert_gating_func"] = 2  # sigmoid (LLAMA_EXPERT_GATING_FUNC_TYPE)
        keys[f"{arch}.expert_weights_scale"] = 1.0
    return keys


def _gemma4_keys(entry: ModelEntry, arch: str) -> dict[str, Any]:
    """gemma4 load_arch_hparams: an SWA flag per layer, SWA/global head widths, PLE width
    (conversion/gemma.py Gemma4Model.set_gguf_parameters writes the same keys)."""
    kinds = entry.layer_kinds()
    full = entry.global_head_dim or entry.head_dim
    keys: dict[str, Any] = {
        f"{arch}.attention.sliding_window_pattern": [k == "S" for k in kinds],
        f"{arch}.attention.shared_kv_layers": entry.kv_shared_layers,
        f"{arch}.embedding_length_per_layer_input": entry.ple_dim,
        f"{arch}.attention.key_length": full,
        f"{arch}.attention.value_length": full,
        f"{arch}.attention.key_length_swa": entry.head_dim,
        f"{arch}.attention.value_length_swa": entry.head_dim,
        f"{arch}.rope.dimension_count": full,
        f"{arch}.rope.dimension_count_swa": entry.head_dim,
    }
    if entry.global_n_head_kv:
        keys[f"{arch}.attention.head_count_kv"] = [
            entry.n_head_kv if k == "S" else entry.global_n_head_kv for k in kinds
        ]
    return keys


def shape_metadata(entry: ModelEntry, file_type: int) -> dict[str, Any]:
    """The GGUF keys llama.cpp's load_arch_hparams reads for `entry`."""
    arch = entry.gguf_arch
    meta: dict[str, Any] = {
        "general.architecture": arch,
        "general.name": f"{entry.name} (shape only)",
        "general.file_type": file_type,
        "general.alignment": ALIGN,
        "tokenizer.ggml.model": "none",
        f"{arch}.vocab_size": entry.vocab,
        f"{arch}.context_length": entry.ctx_native,
        f"{arch}.embedding_length": entry.hidden,
        f"{arch}.block_count": entry.n_layer + entry.mtp_layers,
        f"{arch}.attention.head_count": entry.n_head,
        f"{arch}.attention.key_length": entry.head_dim,
        f"{arch}.attention.value_length": entry.head_dim_v or entry.head_dim,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-6,
        f"{arch}.attention.layer_norm_epsilon": 1e-5,
        f"{arch}.rope.freq_base": 10000.0,
        f"{arch}.rope.dimension_count": entry.head_dim,
    }
    meta.update(_per_layer_keys(entry, arch))
    if entry.swa_window:
        meta[f"{arch}.attention.sliding_window"] = entry.swa_window
    if entry.mla:
        mla = entry.mla
        meta.update({
            f"{arch}.attention.kv_lora_rank": mla.kv_lora_rank,
            f"{arch}.attention.q_lora_rank": mla.q_lora_rank or 0,
            f"{arch}.attention.key_length": mla.kv_lora_rank + mla.qk_rope_dim,
            f"{arch}.attention.value_length": mla.kv_lora_rank,
            f"{arch}.attention.key_length_mla": mla.qk_nope_dim + mla.qk_rope_dim,
            f"{arch}.attention.value_length_mla": mla.v_head_dim,
            f"{arch}.rope.dimension_count": mla.qk_rope_dim,
            f"{arch}.attention.head_count_kv": 1,
        })  # fmt: skip
    if entry.mtp_layers:
        meta[f"{arch}.nextn_predict_layers"] = entry.mtp_layers
    if arch.startswith("qwen35"):
        meta[f"{arch}.rope.dimension_sections"] = [11, 11, 10, 0]  # Qwen3.5 mrope (required)
    if arch == "gemma4":
        meta.update(_gemma4_keys(entry, arch))
    meta.update(_moe_keys(entry, arch))
    meta.update(_ssm_keys(entry, arch))
    return meta


def write_catalog_shape(
    path: Path, model_id: str, recipe_name: str, catalog: EstimateCatalog
) -> tuple[int, list[TypedTensor]]:
    """A shape-only GGUF of catalog model `model_id` under `recipe_name`."""
    entry = catalog.models[model_id]
    recipe = catalog.quants.recipes[recipe_name]
    tensors = typed_layout(entry, recipe, catalog.quants)
    size = write_shape_gguf(path, shape_metadata(entry, recipe.file_type), tensors, catalog)
    return size, tensors
