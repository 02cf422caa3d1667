"""The model an estimate is about: its shape and typed tensor table, from a GGUF file's header
or from the catalog (per-tensor layout of a quant recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import EstimateCatalog, lookup_model, lookup_quant
from stackctl.estimate.gguf import read_gguf
from stackctl.estimate.recipe import TypedTensor, tensor_bytes, typed_layout
from stackctl.estimate.shape import ModelShape, shape_from_entry, shape_from_gguf
from stackctl.loadcache import cached_part
from stackctl.models.estimate import EstimateRequest


@dataclass
class ModelView:
    """One model, from a file or from the catalog: its shape and typed tensor table.

    A view is never changed once made (catalog views are memoised and shared), so figures
    derived from its tensors alone are kept in `derived`, computed on first use: the resolver
    estimates one view at many placements, and each pass over thousands of tensors costs."""

    label: str
    shape: ModelShape
    tensors: list[TypedTensor]
    basis: list[str]
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def loaded_bytes(self) -> int:
        """Bytes of the tensors llama.cpp loads: all but the MTP head's (a file's size, less
        its header and that head)."""
        return sum(t.nbytes for t in self.tensors if not t.mtp)


def load_model_view(request: EstimateRequest, catalog: EstimateCatalog) -> ModelView:
    if request.gguf_path:
        return _view_from_gguf(Path(request.gguf_path), catalog)
    model_id = lookup_model(request.model, catalog)
    entry = catalog.models[model_id]
    if not entry.estimable:
        raise EstimateError(
            f"model '{model_id}': its cache layout is not known well enough to estimate",
            hint="; ".join(entry.notes) or None,
        )
    recipe_name = lookup_quant(request.quant, catalog)
    cached: ModelView | None = catalog.memo().get((model_id, recipe_name))
    if cached is not None:
        return cached
    view = cached_part(
        "views",
        f"{model_id}\0{recipe_name}",
        catalog.source_key(),  # kept between runs when the catalog came from files
        lambda: _catalog_view(model_id, recipe_name, catalog),
        ModelView,
    )
    catalog.memo()[(model_id, recipe_name)] = view
    return view


def _catalog_view(model_id: str, recipe_name: str, catalog: EstimateCatalog) -> ModelView:
    entry = catalog.models[model_id]
    recipe = catalog.quants.recipes[recipe_name]
    shape = shape_from_entry(entry)
    tensors = typed_layout(entry, recipe, catalog.quants)
    for t in tensors:  # the per-tensor facts placement reads, kept with the view
        _ = t.layer, t.is_expert
    basis = [
        f"weights: per-tensor layout of catalog model '{model_id}' ({entry.gguf_arch}) "
        f"with llama.cpp's {recipe_name} recipe (catalog/quants.yaml), no file read",
    ]
    return ModelView(label=f"{model_id} {recipe_name}", shape=shape, tensors=tensors, basis=basis)


def _view_from_gguf(path: Path, catalog: EstimateCatalog) -> ModelView:
    gguf = read_gguf(path)
    names = catalog.quants.type_by_id()
    tensors: list[TypedTensor] = []
    for raw in gguf.tensors:
        type_name = names.get(raw.type_id)
        if type_name is None:
            raise EstimateError(f"{path}: tensor '{raw.name}' has unknown type id {raw.type_id}")
        nbytes = tensor_bytes(raw.shape, type_name, catalog.quants)
        if gguf.data_offset + raw.offset + nbytes > gguf.file_size:
            raise EstimateError(f"{path}: truncated GGUF: tensor '{raw.name}' runs past the end")
        tensors.append(TypedTensor(raw.name, raw.shape, type_name, nbytes))
    shape = shape_from_gguf(gguf)
    # whole nextn blocks are MTP, not only their nextn.* tensors
    tensors = [
        TypedTensor(x.name, x.shape, x.type, x.nbytes, mtp=True)
        if x.layer is not None and x.layer >= shape.n_layer
        else x
        for x in tensors
    ]
    basis = [f"weights: tensor table of {path.name} ({len(tensors)} tensors, {shape.arch})"]
    return ModelView(label=path.name, shape=shape, tensors=tensors, basis=basis)
