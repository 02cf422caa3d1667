"""What loads next to the main model: a draft model, the MTP head, a multimodal projector.

llama.cpp b11434: a draft model (`-md`, `--spec-type draft-*`) is a second model with its own
context, KV cache (`-ctkd/-ctvd`, f16 by default, common/common.h) and compute buffer, on the
main GPU unless `-ngld 0`; `--spec-type draft-mtp` loads the nextn block(s) the main model
skips otherwise (`TENSOR_SKIP` when `!ml.load_mtp`, src/models/qwen35.cpp and others) and runs
them in a second context whose cache holds one full-attention layer per nextn block; a
projector (`--mmproj`) is loaded by libmtmd on the first GPU unless `--no-mmproj-offload`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.gguf import read_gguf
from stackctl.estimate.memory import (
    ComputeTerms,
    ContextParams,
    compute_bytes,
    kv_bytes_per_layer,
    state_bytes_per_layer,
)
from stackctl.estimate.recipe import tensor_bytes
from stackctl.estimate.shape import LayerShape, ModelShape
from stackctl.estimate.speed import active_share
from stackctl.estimate.view import ModelView
from stackctl.models.estimate import EstimateRequest


@dataclass
class Companion:
    """Bytes a companion adds, where it goes, and what one drafted token reads."""

    kind: str  # draft, mtp, mmproj
    weights: int = 0
    kv: int = 0
    compute: int = 0
    on_gpu: bool = True
    at_output: bool = False  # the MTP head rides with the output layer
    read_bytes: float = 0.0  # active bytes read per drafted token
    basis: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute


ViewLoader = Callable[[EstimateRequest, EstimateCatalog], ModelView]


def companions(
    request: EstimateRequest,
    view: ModelView,
    params: ContextParams,
    catalog: EstimateCatalog,
    load_view: ViewLoader,
) -> list[Companion]:
    """Every companion the request asks for."""
    found: list[Companion] = []
    if request.spec_type == "draft":
        found.append(_draft(request, params, catalog, load_view))
    elif request.spec_type == "mtp":
        found.append(_mtp(view, params, catalog))
    if request.mmproj_gguf or request.mmproj_bytes:
        found.append(_mmproj(request, catalog))
    return found


def _draft(
    request: EstimateRequest, params: ContextParams, catalog: EstimateCatalog, load: ViewLoader
) -> Companion:
    if not (request.draft_model or request.draft_gguf):
        raise EstimateError("--spec-type draft needs a draft model (--draft-model or --draft-gguf)")
    draft_request = EstimateRequest(
        model=request.draft_model or "", quant=request.draft_quant, gguf_path=request.draft_gguf
    )
    draft = load(draft_request, catalog)
    f16 = replace(params, type_k="f16", type_v="f16")
    trunk = [t for t in draft.tensors if not t.mtp]
    kv = sum(kv_bytes_per_layer(draft.shape, f16, catalog.quants))
    kv += sum(state_bytes_per_layer(draft.shape, f16))
    return Companion(
        kind="draft",
        weights=sum(t.nbytes for t in trunk),
        kv=kv,
        compute=compute_bytes(draft.shape, f16, ComputeTerms()),
        on_gpu=True,
        read_bytes=sum(t.nbytes * active_share(t, draft.shape) for t in trunk),
        basis=[
            f"draft: {draft.label} with its own f16 KV at ctx {params.n_ctx} and its own "
            "compute buffer (CPU formula), on the main GPU (llama.cpp -ngld default)"
        ],
    )


def _mtp(view: ModelView, params: ContextParams, catalog: EstimateCatalog) -> Companion:
    heads = [t for t in view.tensors if t.mtp]
    if not heads or not view.shape.n_layer_nextn:
        raise EstimateError(
            f"{view.label}: no MTP/nextn layers to draft with",
            hint="use --spec-type draft with a draft model",
        )
    layer = next((x for x in view.shape.layers if x.kv_k and not x.swa), LayerShape(kind="F"))
    head_shape = ModelShape(
        arch=view.shape.arch,
        n_embd=view.shape.n_embd,
        n_vocab=view.shape.n_vocab,
        n_ctx_train=view.shape.n_ctx_train,
        layers=[layer] * view.shape.n_layer_nextn,
        n_expert=view.shape.n_expert,
        n_expert_used=view.shape.n_expert_used,
    )
    output = next((t for t in view.tensors if t.name == "output.weight"), None)
    if output is None:
        output = next(t for t in view.tensors if t.name == "token_embd.weight")
    read = sum(t.nbytes * active_share(t, view.shape) for t in heads) + output.nbytes
    return Companion(
        kind="mtp",
        weights=sum(t.nbytes for t in heads),
        kv=sum(kv_bytes_per_layer(head_shape, params, catalog.quants)),
        compute=compute_bytes(head_shape, params, ComputeTerms()),
        at_output=True,
        read_bytes=read,
        basis=[
            f"mtp: {view.shape.n_layer_nextn} nextn block(s) loaded ({len(heads)} tensors) with "
            "one full-attention KV layer each; their second context's compute buffer is the "
            "CPU formula for that head (assumed, not measured: llama-fit-params b11434 has no "
            "--spec-type to check it)"
        ],
    )


def _mmproj(request: EstimateRequest, catalog: EstimateCatalog) -> Companion:
    if request.mmproj_gguf:
        path = Path(request.mmproj_gguf)
        gguf = read_gguf(path)
        names = catalog.quants.type_by_id()
        weights = 0
        for raw in gguf.tensors:
            type_name = names.get(raw.type_id)
            if type_name is None:
                raise EstimateError(
                    f"{path}: tensor '{raw.name}' has unknown type id {raw.type_id}"
                )
            weights += tensor_bytes(raw.shape, type_name, catalog.quants)
        source = f"tensor table of {path.name}"
    else:
        weights = request.mmproj_bytes or 0
        source = "--mmproj-bytes as given"
    where = "first GPU" if request.mmproj_offload else "host (--no-mmproj-offload)"
    return Companion(
        kind="mmproj",
        weights=weights,
        on_gpu=request.mmproj_offload,
        basis=[
            f"mmproj: {weights / 2**20:.1f} MiB of projector weights ({source}) on the {where}; "
            "the vision encoder's compute buffer is not modelled (it depends on image size)"
        ],
    )
