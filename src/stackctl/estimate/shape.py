"""The architecture facts the memory and speed models need, from a catalog entry or a GGUF.

`ModelShape` mirrors what llama.cpp's `llama_hparams` derives at load time: per layer, whether
it owns a KV cache (and its K/V widths and window), or a recurrent state (conv rows `n_embd_r`
and state `n_embd_s`, llama-hparams.cpp). Both sources give the same shape for the same model,
which is what lets a catalog estimate stand in for a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import ModelEntry
from stackctl.estimate.gguf import GgufFile


@dataclass(frozen=True)
class LayerShape:
    kind: str  # one of catalog.LAYER_KINDS
    kv_k: int = 0  # n_embd_k_gqa: K elements per cached token (0: no KV)
    kv_v: int = 0  # n_embd_v_gqa (0 for MLA: V is a view of K)
    swa: bool = False
    state_r: int = 0  # recurrent conv rows per sequence (f32 elements)
    state_s: int = 0  # recurrent state per sequence (f32 elements)
    n_head: int = 0
    head_k: int = 0
    head_q: int = 0  # MLA: a query head's width before absorption (nope + rope dims)


@dataclass
class ModelShape:
    arch: str
    n_embd: int
    n_vocab: int
    n_ctx_train: int
    layers: list[LayerShape]
    swa_window: int = 0
    n_expert: int = 0
    n_expert_used: int = 0
    n_layer_nextn: int = 0
    tied_embeddings: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layer(self) -> int:
        return len(self.layers)

    @property
    def is_recurrent(self) -> bool:
        return any(layer.state_s or layer.state_r for layer in self.layers)


def gdn_state(
    key_heads: int, value_heads: int, key_dim: int, value_dim: int, conv: int
) -> tuple[int, int]:
    """Gated DeltaNet conv rows and state per sequence, as llama.cpp's n_embd_r/n_embd_s.

    d_inner = value_heads*value_dim, n_group = key_heads, d_state = key_dim.
    """
    d_inner = value_heads * value_dim
    conv_rows = (conv - 1) * (d_inner + 2 * key_heads * key_dim)
    return conv_rows, key_dim * d_inner


def mamba_state(heads: int, head_dim: int, state: int, groups: int, conv: int) -> tuple[int, int]:
    d_inner = heads * head_dim
    return (conv - 1) * (d_inner + 2 * groups * state), state * d_inner


def shape_from_entry(entry: ModelEntry) -> ModelShape:
    """The llama.cpp view of a catalog model (trunk layers only; MTP layers are separate)."""
    kinds = entry.layer_kinds()
    if len(kinds) != entry.n_layer:
        raise EstimateError(
            f"catalog model '{entry.id}': layer_pattern has {len(kinds)} layers, "
            f"n_layer is {entry.n_layer}"
        )
    owners = entry.n_layer - entry.kv_shared_layers
    layers = [_entry_layer(entry, kind, il < owners) for il, kind in enumerate(kinds)]
    moe = entry.moe
    return ModelShape(
        arch=entry.gguf_arch,
        n_embd=entry.hidden,
        n_vocab=entry.vocab,
        n_ctx_train=entry.ctx_native,
        layers=layers,
        swa_window=entry.swa_window or 0,
        n_expert=moe.experts if moe else 0,
        n_expert_used=moe.experts_used if moe else 0,
        n_layer_nextn=entry.mtp_layers,
        tied_embeddings=entry.tied_embeddings,
    )


def _entry_layer(entry: ModelEntry, kind: str, owns_kv: bool) -> LayerShape:
    head_v = entry.head_dim_v or entry.head_dim
    if kind in ("F", "S"):
        head_k, n_kv = entry.head_dim, entry.n_head_kv
        if kind == "F" and entry.global_head_dim:
            head_k = head_v = entry.global_head_dim
            n_kv = entry.global_n_head_kv or n_kv
        if not owns_kv:
            return LayerShape(kind=kind, swa=kind == "S", n_head=entry.n_head, head_k=head_k)
        return LayerShape(
            kind=kind,
            kv_k=n_kv * head_k,
            kv_v=n_kv * head_v,
            swa=kind == "S",
            n_head=entry.n_head,
            head_k=head_k,
        )
    if kind == "A":
        mla = entry.mla
        if mla is None:
            raise EstimateError(f"catalog model '{entry.id}': MLA layers need `mla` facts")
        # llama.cpp caches the compressed latent plus the RoPE part in K only (is_mla()).
        return LayerShape(
            kind=kind,
            kv_k=mla.kv_lora_rank + mla.qk_rope_dim,
            n_head=entry.n_head,
            head_k=mla.kv_lora_rank + mla.qk_rope_dim,
            head_q=mla.qk_nope_dim + mla.qk_rope_dim,
        )
    return _entry_state_layer(entry, kind)


def _entry_state_layer(entry: ModelEntry, kind: str) -> LayerShape:
    if kind == "L":
        gdn = entry.gdn
        if gdn is None:
            raise EstimateError(f"catalog model '{entry.id}': linear layers need `gdn` facts")
        r, s = gdn_state(
            gdn.key_heads, gdn.value_heads, gdn.key_dim, gdn.value_dim, gdn.conv_kernel
        )
        return LayerShape(kind=kind, state_r=r, state_s=s)
    if kind == "M":
        mamba = entry.mamba
        if mamba is None:
            raise EstimateError(f"catalog model '{entry.id}': Mamba layers need `mamba` facts")
        r, s = mamba_state(
            mamba.heads, mamba.head_dim, mamba.state, mamba.groups, mamba.conv_kernel
        )
        return LayerShape(kind=kind, state_r=r, state_s=s)
    if kind == "C":
        l_cache = entry.shortconv_l_cache or 3
        return LayerShape(kind=kind, state_r=entry.hidden * (l_cache - 1))
    return LayerShape(kind=kind)  # FFN-only / MLP-only blocks own no cache


def _per_layer(value: Any, n_layer: int, name: str) -> list[int]:
    if isinstance(value, list):
        if len(value) != n_layer:
            raise EstimateError(f"GGUF key {name} has {len(value)} entries, expected {n_layer}")
        return [int(v) for v in value]
    if value is None:
        raise EstimateError(f"GGUF lacks {name}")
    return [int(value)] * n_layer


def _swa_flags(gguf: GgufFile, n_layer: int) -> list[bool]:
    """Which layers slide, the way each architecture's load_arch_hparams sets it."""
    window = int(gguf.arch_key("attention.sliding_window", 0) or 0)
    pattern = gguf.arch_key("attention.sliding_window_pattern")
    if not window:
        return [False] * n_layer
    if isinstance(pattern, list):
        return [bool(v) for v in pattern[:n_layer]]
    # Hard-coded periods in llama.cpp src/models/<arch>.cpp: layer il slides when
    # il % period < period - 1 (llama_hparams::set_swa_pattern).
    period = int(pattern) if pattern else {"gemma3": 6, "gemma2": 2, "gpt-oss": 2}.get(gguf.arch, 0)
    if not period:
        return [False] * n_layer
    return [il % period < period - 1 for il in range(n_layer)]


def shape_from_gguf(gguf: GgufFile) -> ModelShape:
    """The llama.cpp view of a GGUF from its metadata alone."""
    arch = gguf.arch
    if not arch:
        raise EstimateError(f"{gguf.path}: GGUF has no general.architecture")
    n_nextn = int(gguf.arch_key("nextn_predict_layers", 0) or 0)
    n_all = int(gguf.arch_key("block_count", 0) or 0)
    if n_all <= 0:
        raise EstimateError(f"{gguf.path}: GGUF lacks {arch}.block_count")
    n_layer = n_all - n_nextn
    head_kv = _per_layer(gguf.arch_key("attention.head_count_kv", 0), n_all, "head_count_kv")
    n_head = _per_layer(gguf.arch_key("attention.head_count", 0), n_all, "head_count")
    ff = _per_layer(gguf.arch_key("feed_forward_length", 0), n_all, "feed_forward_length")
    swa = _swa_flags(gguf, n_all)
    layers = [
        _gguf_layer(gguf, il, head_kv[il], n_head[il], ff[il], swa[il]) for il in range(n_layer)
    ]
    _apply_kv_sharing(gguf, layers)
    tok = next((t for t in gguf.tensors if t.name == "token_embd.weight"), None)
    n_vocab = int(gguf.arch_key("vocab_size", 0) or (tok.shape[1] if tok else 0))
    return ModelShape(
        arch=arch,
        n_embd=int(gguf.arch_key("embedding_length", 0)),
        n_vocab=n_vocab,
        n_ctx_train=int(gguf.arch_key("context_length", 0) or 0),
        layers=layers,
        swa_window=int(gguf.arch_key("attention.sliding_window", 0) or 0),
        n_expert=int(gguf.arch_key("expert_count", 0) or 0),
        n_expert_used=int(gguf.arch_key("expert_used_count", 0) or 0),
        n_layer_nextn=n_nextn,
        tied_embeddings=not any(t.name == "output.weight" for t in gguf.tensors),
    )


def _recurrent_kind(gguf: GgufFile, il: int, head_kv: int, ff: int) -> str | None:
    """'L', 'M', 'C' for a recurrent layer, '-'/'E' for a block without a cache, else None."""
    arch = gguf.arch
    if arch in ("qwen35", "qwen35moe", "qwen3next"):
        interval = int(gguf.arch_key("full_attention_interval", 4))
        return None if (il + 1) % interval == 0 else "L"
    if arch in ("lfm2", "lfm2moe"):
        return "C" if head_kv == 0 else None
    if arch in ("nemotron_h", "nemotron_h_moe"):
        if head_kv > 0:
            return None
        return "-" if ff > 0 else "M"
    if arch in ("mamba2", "mamba"):
        return "M"
    return None


def _gguf_layer(
    gguf: GgufFile, il: int, head_kv: int, n_head: int, ff: int, swa: bool
) -> LayerShape:
    kind = _recurrent_kind(gguf, il, head_kv, ff)
    if kind in ("L", "M"):
        # llama_hparams::n_embd_r / n_embd_s: one formula for DeltaNet and Mamba-2
        conv = int(gguf.arch_key("ssm.conv_kernel", 4))
        d_inner = int(gguf.arch_key("ssm.inner_size", 0))
        d_state = int(gguf.arch_key("ssm.state_size", 0))
        groups = int(gguf.arch_key("ssm.group_count", 0) or 0)
        conv_rows = (conv - 1) * (d_inner + 2 * groups * d_state)
        return LayerShape(kind=kind, state_r=conv_rows, state_s=d_state * d_inner)
    if kind == "C":
        l_cache = int(gguf.arch_key("shortconv.l_cache", 3))
        return LayerShape(kind="C", state_r=int(gguf.arch_key("embedding_length")) * (l_cache - 1))
    if kind is not None:
        return LayerShape(kind=kind)
    return _gguf_attention_layer(gguf, head_kv, n_head, swa)


def _gguf_attention_layer(gguf: GgufFile, head_kv: int, n_head: int, swa: bool) -> LayerShape:
    n_embd = int(gguf.arch_key("embedding_length", 0))
    mla_rank = int(gguf.arch_key("attention.kv_lora_rank", 0) or 0)
    if mla_rank:
        rope = int(gguf.arch_key("rope.dimension_count", 64))
        width = mla_rank + rope
        # key_length_mla: the query head before absorption (older files: key_length)
        head_q = gguf.arch_key("attention.key_length_mla") or gguf.arch_key("attention.key_length")
        return LayerShape(kind="A", kv_k=width * max(head_kv, 1), n_head=n_head, head_k=width,
                          head_q=int(head_q or 0) if head_q != width else 0)  # fmt: skip
    suffix = "_swa" if swa else ""
    head_k = gguf.arch_key(f"attention.key_length{suffix}") or gguf.arch_key("attention.key_length")
    head_v = gguf.arch_key(f"attention.value_length{suffix}") or gguf.arch_key(
        "attention.value_length"
    )
    if not head_k:
        head_k = n_embd // max(n_head, 1)
    head_v = head_v or head_k
    return LayerShape(
        kind="S" if swa else "F",
        kv_k=head_kv * int(head_k),
        kv_v=head_kv * int(head_v),
        swa=swa,
        n_head=n_head,
        head_k=int(head_k),
    )


def _apply_kv_sharing(gguf: GgufFile, layers: list[LayerShape]) -> None:
    """Gemma 3n/4: the last `shared_kv_layers` layers reuse earlier caches and own none."""
    shared = int(gguf.arch_key("attention.shared_kv_layers", 0) or 0)
    for il in range(len(layers) - shared, len(layers)):
        old = layers[il]
        layers[il] = LayerShape(kind=old.kind, swa=old.swa, n_head=old.n_head, head_k=old.head_k)
