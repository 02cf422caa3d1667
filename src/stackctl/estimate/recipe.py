"""Per-tensor GGUF types for a quant recipe, and tensor byte sizes.

The rules are llama.cpp's `llama_tensor_get_type_impl` (src/llama-quant.cpp, b11434), kept as
data in catalog/quants.yaml; this module only interprets them. Sizes are ggml's
`ggml_row_size`: elements / block * bytes per block.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import ModelEntry, QuantCatalog, Recipe, RecipeRule
from stackctl.estimate.layout import TensorShape, layout_tensors

_LAYER = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class TypedTensor:
    name: str
    shape: tuple[int, ...]
    type: str
    nbytes: int
    mtp: bool = False

    @cached_property
    def layer(self) -> int | None:
        match = _LAYER.match(self.name)
        return int(match.group(1)) if match else None

    @cached_property
    def is_expert(self) -> bool:
        return "_exps." in self.name

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


def tensor_bytes(shape: tuple[int, ...], type_name: str, quants: QuantCatalog) -> int:
    info = quants.types.get(type_name)
    if info is None:
        raise EstimateError(f"unknown GGUF tensor type {type_name}")
    if not shape:
        return info.bytes
    rows = 1
    for dim in shape[1:]:
        rows *= dim
    return rows * (shape[0] // info.block) * info.bytes


def category(name: str) -> str:
    """llama-quant.cpp tensor_get_category, by name."""
    if name == "output.weight":
        return "output"
    if name == "token_embd.weight":
        return "token_embd"
    for key, cat in (
        ("attn_qkv.weight", "attn_v"),
        ("attn_kv_b.weight", "attn_v"),
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if key in name:
            return cat
    return "other"


_NO_QUANT = (
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "per_layer_model_proj",
)


def is_quantizable(t: TensorShape) -> bool:
    """llama-quant.cpp tensor_allows_quantization: 2-D/3-D weights, not norms or gates."""
    if len(t.shape) < 2 or not t.name.endswith("weight"):
        return False
    return not any(key in t.name for key in _NO_QUANT)


@dataclass
class _Counters:
    n_attn_v: int
    n_layer_all: int
    n_head: int
    n_head_kv: int
    n_expert: int
    i_attn_v: int = 0
    i_ffn_down: int = 0


def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _rule_applies(rule: RecipeRule, i: int, n: int, counters: _Counters) -> bool:
    gqa = counters.n_head // max(counters.n_head_kv, 1)
    checks = {
        None: True,
        "more_bits": _more_bits(i, n),
        "first_eighth": i < n // 8,
        "first_sixteenth": i < n // 16,
        "first_two": i < 2,
        "first_four": i < 4,
        "gqa4": gqa >= 4,
        "gqa4_or_experts4": gqa >= 4 or counters.n_expert >= 4,
    }
    return checks[rule.when]


def _fallback(t: TensorShape, target: str, quants: QuantCatalog) -> str:
    block = quants.types[target].block
    if t.shape[0] % block == 0:
        return target
    demoted = quants.fallback.get(target, target)
    if t.shape[0] % quants.types[demoted].block != 0:
        return "F16"
    return demoted


def _output_type(t: TensorShape, recipe: Recipe, quants: QuantCatalog) -> str:
    default = recipe.default
    if recipe.output == "keep":
        return default
    if recipe.output == "q8" or t.shape[0] % quants.types[default].block != 0:
        return "Q8_0"
    if recipe.output == "q5k":
        return "Q5_K"
    if recipe.output == "keep_q8" and default == "Q8_0":
        return "Q8_0"
    return "Q6_K"


def _pick(t: TensorShape, recipe: Recipe, counters: _Counters, tied: bool) -> str:
    cat = category(t.name)
    if cat == "output" or (tied and cat == "token_embd"):
        return "__output__"
    if recipe.experts:
        return recipe.experts if len(t.shape) == 3 and t.shape[2] > 1 else recipe.default
    if cat == "token_embd":
        return recipe.token_embd or recipe.default
    i, n = 0, counters.n_layer_all
    if cat == "attn_v":
        i, n = counters.i_attn_v, counters.n_attn_v
        counters.i_attn_v += 1
    elif cat == "ffn_down":
        layer = _LAYER.match(t.name)
        # MoE models index by the layer in the name, dense ones by a running count.
        i = int(layer.group(1)) if counters.n_expert > 1 and layer else counters.i_ffn_down
        counters.i_ffn_down += 1
    for rule in recipe.rules:
        if rule.category == cat and _rule_applies(rule, i, n, counters):
            return rule.type
    return recipe.default


def assign_types(
    tensors: list[TensorShape],
    recipe: Recipe,
    quants: QuantCatalog,
    *,
    n_head: int,
    n_head_kv: int,
    n_expert: int,
    n_layer_all: int,
) -> list[TypedTensor]:
    """Give every tensor its type under `recipe`, as llama-quantize would."""
    trunk = [t for t in tensors if not t.mtp] + [t for t in tensors if t.mtp]
    counters = _Counters(
        n_attn_v=sum(1 for t in trunk if category(t.name) == "attn_v" and is_quantizable(t)),
        n_layer_all=n_layer_all,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_expert=n_expert,
    )
    tied = not any(t.name == "output.weight" for t in tensors)
    typed: list[TypedTensor] = []
    for t in trunk:
        if not is_quantizable(t):
            type_name = "F32"
        else:
            type_name = _pick(t, recipe, counters, tied)
            if type_name == "__output__":
                type_name = _output_type(t, recipe, quants)
            elif type_name not in ("F32", "F16", "BF16"):
                type_name = _fallback(t, type_name, quants)
        typed.append(
            TypedTensor(
                name=t.name,
                shape=t.shape,
                type=type_name,
                nbytes=tensor_bytes(t.shape, type_name, quants),
                mtp=t.mtp,
            )
        )
    return typed


def typed_layout(entry: ModelEntry, recipe: Recipe, quants: QuantCatalog) -> list[TypedTensor]:
    """The tensor table a catalog model has under `recipe`, each tensor with its own type."""
    return assign_types(
        layout_tensors(entry),
        recipe,
        quants,
        n_head=entry.n_head,
        n_head_kv=entry.n_head_kv or 1,
        n_expert=entry.moe.experts if entry.moe else 0,
        n_layer_all=entry.n_layer + entry.mtp_layers,
    )
