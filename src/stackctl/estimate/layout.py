"""The tensor table llama.cpp expects for a catalog model, without a file.

Names and shapes follow each architecture's `load_arch_tensors` in llama.cpp src/models/*.cpp
(b11434); shapes are ggml order (ne0 = row length first). Types are chosen later by
`recipe.assign_types`. MTP/nextn blocks are listed with `mtp=True`: llama.cpp skips them unless
MTP is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import ModelEntry


@dataclass(frozen=True)
class TensorShape:
    name: str
    shape: tuple[int, ...]
    mtp: bool = False


Builder = Callable[[ModelEntry, int, list[TensorShape]], None]


def _add(out: list[TensorShape], name: str, *shape: int, mtp: bool = False) -> None:
    out.append(TensorShape(name=name, shape=tuple(shape), mtp=mtp))


def _head(entry: ModelEntry, out: list[TensorShape], norm: str = "output_norm.weight") -> None:
    e, v = entry.hidden, entry.vocab
    _add(out, "token_embd.weight", e, v)
    _add(out, norm, e)
    if not entry.tied_embeddings:
        _add(out, "output.weight", e, v)


def _attention(
    entry: ModelEntry, il: int, out: list[TensorShape], *, qk_norm: bool, gate: bool = False
) -> None:
    """Q/K/V/O projections; `gate` doubles Q for Qwen3.5's gated attention output."""
    e, p = entry.hidden, f"blk.{il}."
    head_k = entry.head_dim
    head_v = entry.head_dim_v or head_k
    kind = entry.layer_kinds()[il] if il < entry.n_layer else "F"
    n_kv = entry.n_head_kv
    if kind == "F" and entry.global_head_dim:
        head_k = head_v = entry.global_head_dim
        n_kv = entry.global_n_head_kv or n_kv
    q = entry.n_head * head_k
    _add(out, p + "attn_q.weight", e, q * 2 if gate else q)
    _add(out, p + "attn_k.weight", e, n_kv * head_k)
    _add(out, p + "attn_v.weight", e, n_kv * head_v)
    _add(out, p + "attn_output.weight", entry.n_head * head_v, e)
    if entry.attn_bias:
        _add(out, p + "attn_q.bias", q)
        _add(out, p + "attn_k.bias", n_kv * head_k)
        _add(out, p + "attn_v.bias", n_kv * head_v)
        if entry.gguf_arch == "gpt-oss":  # GLM-4.5 has Q/K/V biases only
            _add(out, p + "attn_output.bias", e)
    if qk_norm:
        _add(out, p + "attn_q_norm.weight", head_k)
        _add(out, p + "attn_k_norm.weight", head_k)


def _dense_ffn(entry: ModelEntry, il: int, out: list[TensorShape], width: int = 0) -> None:
    e, f, p = entry.hidden, width or entry.ffn, f"blk.{il}."
    _add(out, p + "ffn_gate.weight", e, f)
    _add(out, p + "ffn_up.weight", e, f)
    _add(out, p + "ffn_down.weight", f, e)


def _moe_ffn(entry: ModelEntry, il: int, out: list[TensorShape], *, shexp_gate: bool) -> None:
    moe = entry.moe
    if moe is None:
        raise EstimateError(f"catalog model '{entry.id}' needs `moe` facts")
    e, f, x, p = entry.hidden, moe.expert_ffn, moe.experts, f"blk.{il}."
    _add(out, p + "ffn_gate_inp.weight", e, x)
    _add(out, p + "ffn_gate_exps.weight", e, f, x)
    _add(out, p + "ffn_up_exps.weight", e, f, x)
    _add(out, p + "ffn_down_exps.weight", f, e, x)
    if moe.shared_experts:
        fs = moe.shared_ffn or moe.expert_ffn * moe.shared_experts
        if shexp_gate:
            _add(out, p + "ffn_gate_inp_shexp.weight", e)
        _add(out, p + "ffn_gate_shexp.weight", e, fs)
        _add(out, p + "ffn_up_shexp.weight", e, fs)
        _add(out, p + "ffn_down_shexp.weight", fs, e)


def _llama(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    p = f"blk.{il}."
    _add(out, p + "attn_norm.weight", entry.hidden)
    _attention(entry, il, out, qk_norm=entry.gguf_arch in ("qwen3", "qwen3moe"))
    _add(out, p + "ffn_norm.weight", entry.hidden)
    if entry.moe and il >= entry.moe.dense_lead_layers:
        _moe_ffn(entry, il, out, shexp_gate=False)
    else:
        _dense_ffn(entry, il, out, entry.moe.dense_ffn if entry.moe else 0)


def _phi3(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    e, p = entry.hidden, f"blk.{il}."
    head = entry.head_dim
    qkv = entry.n_head * head + 2 * entry.n_head_kv * head
    _add(out, p + "attn_norm.weight", e)
    _add(out, p + "attn_qkv.weight", e, qkv)
    _add(out, p + "attn_output.weight", entry.n_head * head, e)
    _add(out, p + "ffn_norm.weight", e)
    _add(out, p + "ffn_up.weight", e, 2 * entry.ffn)
    _add(out, p + "ffn_down.weight", entry.ffn, e)


def _gemma3(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    p = f"blk.{il}."
    _add(out, p + "attn_norm.weight", entry.hidden)
    _attention(entry, il, out, qk_norm=True)
    _add(out, p + "post_attention_norm.weight", entry.hidden)
    _add(out, p + "ffn_norm.weight", entry.hidden)
    _dense_ffn(entry, il, out)
    _add(out, p + "post_ffw_norm.weight", entry.hidden)


def _gpt_oss(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    moe = entry.moe
    if moe is None:
        raise EstimateError(f"catalog model '{entry.id}' needs `moe` facts")
    e, f, x, p = entry.hidden, moe.expert_ffn, moe.experts, f"blk.{il}."
    _add(out, p + "attn_norm.weight", e)
    _add(out, p + "post_attention_norm.weight", e)
    _attention(entry, il, out, qk_norm=False)
    _add(out, p + "attn_sinks.weight", entry.n_head)
    _moe_ffn(entry, il, out, shexp_gate=False)
    _add(out, p + "ffn_gate_inp.bias", x)
    _add(out, p + "ffn_gate_exps.bias", f, x)
    _add(out, p + "ffn_up_exps.bias", f, x)
    _add(out, p + "ffn_down_exps.bias", e, x)


def _lfm2(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    e, p = entry.hidden, f"blk.{il}."
    _add(out, p + "ffn_norm.weight", e)
    if entry.moe and il >= entry.moe.dense_lead_layers:
        _moe_ffn(entry, il, out, shexp_gate=False)
        _add(out, p + "exp_probs_b.bias", entry.moe.experts)
    else:
        _dense_ffn(entry, il, out, entry.moe.dense_ffn if entry.moe else 0)
    _add(out, p + "attn_norm.weight", e)
    if entry.layer_kinds()[il] == "C":
        _add(out, p + "shortconv.conv.weight", entry.shortconv_l_cache or 3, e)
        _add(out, p + "shortconv.in_proj.weight", e, 3 * e)
        _add(out, p + "shortconv.out_proj.weight", e, e)
    else:
        _add(out, p + "attn_q_norm.weight", entry.head_dim)
        _add(out, p + "attn_k_norm.weight", entry.head_dim)
        _attention(entry, il, out, qk_norm=False)


def _qwen35(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    e, p = entry.hidden, f"blk.{il}."
    _add(out, p + "attn_norm.weight", e)
    _add(out, p + "post_attention_norm.weight", e)
    if il < entry.n_layer and entry.layer_kinds()[il] == "L":
        _gdn_block(entry, il, out)
    else:
        _attention(entry, il, out, qk_norm=True, gate=True)
    if entry.moe:
        _moe_ffn(entry, il, out, shexp_gate=True)
    else:
        _dense_ffn(entry, il, out)


def _gdn_block(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    gdn = entry.gdn
    if gdn is None:
        raise EstimateError(f"catalog model '{entry.id}' needs `gdn` facts")
    e, p = entry.hidden, f"blk.{il}."
    key_dim = gdn.key_heads * gdn.key_dim
    value_dim = gdn.value_heads * gdn.value_dim
    _add(out, p + "attn_qkv.weight", e, 2 * key_dim + value_dim)
    _add(out, p + "attn_gate.weight", e, value_dim)
    _add(out, p + "ssm_conv1d.weight", gdn.conv_kernel, 2 * key_dim + value_dim)
    _add(out, p + "ssm_dt.bias", gdn.value_heads)
    _add(out, p + "ssm_a", gdn.value_heads)
    if entry.gguf_arch == "qwen3next":  # one fused beta/alpha projection
        _add(out, p + "ssm_ba.weight", e, 2 * gdn.value_heads)
    else:
        _add(out, p + "ssm_beta.weight", e, gdn.value_heads)
        _add(out, p + "ssm_alpha.weight", e, gdn.value_heads)
    _add(out, p + "ssm_norm.weight", gdn.value_dim)
    _add(out, p + "ssm_out.weight", value_dim, e)


def _gemma4(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    """gemma4.cpp load_arch_tensors: per-layer head widths, PLE, optional MoE next to the MLP."""
    e, p = entry.hidden, f"blk.{il}."
    if il == 0:
        _gemma4_globals(entry, out)
    _add(out, p + "attn_norm.weight", e)
    _attention(entry, il, out, qk_norm=True)
    _add(out, p + "post_attention_norm.weight", e)
    _add(out, p + "ffn_norm.weight", e)
    _dense_ffn(entry, il, out)
    _add(out, p + "post_ffw_norm.weight", e)
    moe = entry.moe
    if moe:
        x, f = moe.experts, moe.expert_ffn
        _add(out, p + "ffn_gate_inp.weight", e, x)
        _add(out, p + "ffn_gate_inp.scale", e)
        for norm in ("pre_ffw_norm_2", "post_ffw_norm_1", "post_ffw_norm_2"):
            _add(out, p + norm + ".weight", e)
        _add(out, p + "ffn_gate_exps.weight", e, f, x)
        _add(out, p + "ffn_up_exps.weight", e, f, x)
        _add(out, p + "ffn_down_exps.weight", f, e, x)
        _add(out, p + "ffn_down_exps.scale", x)
    if entry.ple_dim:
        _add(out, p + "inp_gate.weight", e, entry.ple_dim)
        _add(out, p + "proj.weight", entry.ple_dim, e)
        _add(out, p + "post_norm.weight", e)


def _gemma4_globals(entry: ModelEntry, out: list[TensorShape]) -> None:
    """The one rope_freqs table of the full layers (duplicated, not copied) and PLE tables."""
    _add(out, "rope_freqs.weight", (entry.global_head_dim or entry.head_dim) // 2)
    if entry.ple_dim:
        width = entry.ple_dim * entry.n_layer
        _add(out, "per_layer_token_embd.weight", width, entry.vocab)
        _add(out, "per_layer_model_proj.weight", entry.hidden, width)
        _add(out, "per_layer_proj_norm.weight", entry.ple_dim)


def _nemotron_h(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    e, p = entry.hidden, f"blk.{il}."
    kind = entry.layer_kinds()[il]
    _add(out, p + "attn_norm.weight", e)
    if kind == "M":
        mamba = entry.mamba
        if mamba is None:
            raise EstimateError(f"catalog model '{entry.id}' needs `mamba` facts")
        d_inner = mamba.heads * mamba.head_dim
        conv_dim = d_inner + 2 * mamba.groups * mamba.state
        _add(
            out, p + "ssm_in.weight", e, 2 * d_inner + 2 * mamba.groups * mamba.state + mamba.heads
        )
        _add(out, p + "ssm_conv1d.weight", mamba.conv_kernel, conv_dim)
        _add(out, p + "ssm_conv1d.bias", conv_dim)
        _add(out, p + "ssm_dt.bias", mamba.heads)
        _add(out, p + "ssm_a", 1, mamba.heads)
        _add(out, p + "ssm_d", 1, mamba.heads)
        _add(out, p + "ssm_norm.weight", d_inner // mamba.groups, mamba.groups)
        _add(out, p + "ssm_out.weight", d_inner, e)
    elif kind == "F":
        _attention(entry, il, out, qk_norm=False)
    elif kind == "E":
        _nemotron_moe(entry, il, out)
    else:
        _add(out, p + "ffn_up.weight", e, entry.ffn)
        _add(out, p + "ffn_down.weight", entry.ffn, e)


def _nemotron_moe(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    """relu2 experts: up/down only, no gate (nemotron-h.cpp load_arch_tensors)."""
    moe = entry.moe
    if moe is None:
        raise EstimateError(f"catalog model '{entry.id}' needs `moe` facts")
    e, f, x, p = entry.hidden, moe.expert_ffn, moe.experts, f"blk.{il}."
    _add(out, p + "ffn_gate_inp.weight", e, x)
    _add(out, p + "exp_probs_b.bias", x)
    _add(out, p + "ffn_down_exps.weight", f, e, x)
    _add(out, p + "ffn_up_exps.weight", e, f, x)
    fs = moe.shared_ffn or f
    _add(out, p + "ffn_down_shexp.weight", fs, e)
    _add(out, p + "ffn_up_shexp.weight", e, fs)


def _deepseek2(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    mla = entry.mla
    if mla is None:
        raise EstimateError(f"catalog model '{entry.id}' needs `mla` facts")
    e, h, p = entry.hidden, entry.n_head, f"blk.{il}."
    head_k = mla.qk_nope_dim + mla.qk_rope_dim
    _add(out, p + "attn_norm.weight", e)
    if mla.q_lora_rank:
        _add(out, p + "attn_q_a_norm.weight", mla.q_lora_rank)
        _add(out, p + "attn_q_a.weight", e, mla.q_lora_rank)
        _add(out, p + "attn_q_b.weight", mla.q_lora_rank, h * head_k)
    else:
        _add(out, p + "attn_q.weight", e, h * head_k)
    _add(out, p + "attn_kv_a_norm.weight", mla.kv_lora_rank)
    _add(out, p + "attn_kv_a_mqa.weight", e, mla.kv_lora_rank + mla.qk_rope_dim)
    _add(out, p + "attn_k_b.weight", mla.qk_nope_dim, mla.kv_lora_rank, h)
    _add(out, p + "attn_v_b.weight", mla.kv_lora_rank, mla.v_head_dim, h)
    _add(out, p + "attn_output.weight", h * mla.v_head_dim, e)
    _add(out, p + "ffn_norm.weight", e)
    moe = entry.moe
    if moe is None or il < moe.dense_lead_layers:
        _dense_ffn(entry, il, out, moe.dense_ffn if moe else 0)
        return
    _moe_ffn(entry, il, out, shexp_gate=False)
    _add(out, p + "exp_probs_b.bias", moe.experts)


def _glm4moe(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    p = f"blk.{il}."
    _add(out, p + "attn_norm.weight", entry.hidden)
    _attention(entry, il, out, qk_norm=False)
    _add(out, p + "post_attention_norm.weight", entry.hidden)
    moe = entry.moe
    if moe is None or il < moe.dense_lead_layers:
        _dense_ffn(entry, il, out, moe.dense_ffn if moe else 0)
        return
    _moe_ffn(entry, il, out, shexp_gate=False)
    _add(out, p + "exp_probs_b.bias", moe.experts)


def _minimax_m2(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    """All layers full attention with a QK norm over every head at once (llama.cpp's
    LLM_ARCH_MINIMAX_M2: attn_q_norm spans n_head x head_dim, attn_k_norm n_head_kv x head_dim),
    routed experts only, with a router bias."""
    p, d = f"blk.{il}.", entry.head_dim
    _add(out, p + "attn_norm.weight", entry.hidden)
    _attention(entry, il, out, qk_norm=False)
    _add(out, p + "attn_q_norm.weight", entry.n_head * d)
    _add(out, p + "attn_k_norm.weight", entry.n_head_kv * d)
    _add(out, p + "ffn_norm.weight", entry.hidden)
    _moe_ffn(entry, il, out, shexp_gate=False)
    if entry.moe is not None:
        _add(out, p + "exp_probs_b.bias", entry.moe.experts)


BUILDERS: dict[str, Builder] = {
    "llama": _llama,
    "qwen3": _llama,
    "qwen3moe": _llama,
    "phi3": _phi3,
    "gemma3": _gemma3,
    "gpt-oss": _gpt_oss,
    "lfm2": _lfm2,
    "lfm2moe": _lfm2,
    "qwen35": _qwen35,
    "qwen35moe": _qwen35,
    "qwen3next": _qwen35,
    "gemma4": _gemma4,
    "nemotron_h": _nemotron_h,
    "nemotron_h_moe": _nemotron_h,
    "deepseek2": _deepseek2,
    "glm4moe": _glm4moe,
    "minimax-m2": _minimax_m2,
}


def _mtp_block(entry: ModelEntry, il: int, out: list[TensorShape]) -> None:
    """A nextn block: the architecture's own decoder block (full attention) plus the
    embedding/hidden projection (qwen35*, deepseek2, glm4moe load_arch_tensors)."""
    block: list[TensorShape] = []
    e = entry.hidden
    BUILDERS[entry.gguf_arch](entry, il, block)
    _add(block, f"blk.{il}.nextn.eh_proj.weight", 2 * e, e)
    _add(block, f"blk.{il}.nextn.enorm.weight", e)
    _add(block, f"blk.{il}.nextn.hnorm.weight", e)
    _add(block, f"blk.{il}.nextn.shared_head_norm.weight", e)
    out.extend(TensorShape(t.name, t.shape, mtp=True) for t in block)


def layout_tensors(entry: ModelEntry) -> list[TensorShape]:
    """Every weight tensor of `entry` as llama.cpp names and shapes it."""
    builder = BUILDERS.get(entry.gguf_arch)
    if builder is None:
        raise EstimateError(
            f"no tensor layout for architecture '{entry.gguf_arch}' (model '{entry.id}')",
            hint="estimate it from a local file with --gguf",
        )
    out: list[TensorShape] = []
    _head(
        entry,
        out,
        "token_embd_norm.weight" if entry.gguf_arch.startswith("lfm2") else ("output_norm.weight"),
    )
    for il in range(entry.n_layer):
        builder(entry, il, out)
    for il in range(entry.n_layer, entry.n_layer + entry.mtp_layers):
        _mtp_block(entry, il, out)
    return out
