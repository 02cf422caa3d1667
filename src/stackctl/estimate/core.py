"""`estimate(request, hardware)`: memory per device, fit, and speed with its basis.

The catalogs are read from `catalog_dir()` unless the caller passes `catalog=` (tests and
the resolver can load them once with `load_estimate_catalog`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import (
    EstimateCatalog,
    load_estimate_catalog,
    lookup_model,
    lookup_quant,
)
from stackctl.estimate.companions import Companion, companions
from stackctl.estimate.devices import build_devices, device_speeds
from stackctl.estimate.engines import estimate_ds4, estimate_mlx, estimate_vllm
from stackctl.estimate.gguf import read_gguf
from stackctl.estimate.memory import (
    ComputeTerms,
    ContextParams,
    compute_bytes,
    kv_bytes_per_layer,
    output_bytes,
    state_bytes_per_layer,
)
from stackctl.estimate.placement import (
    Device,
    Placement,
    parse_overrides,
    place_tensor,
    split_layers,
)
from stackctl.estimate.recipe import TypedTensor, tensor_bytes, typed_layout
from stackctl.estimate.shape import ModelShape, shape_from_entry, shape_from_gguf
from stackctl.estimate.speculative import spec_draft, speculative_basis, speed_estimate
from stackctl.estimate.speed import DeviceSpeed
from stackctl.models.estimate import (
    DeviceMemory,
    Estimate,
    EstimateRequest,
    MemoryEstimate,
    PlacementInfo,
)
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

# CPU compute buffer, fitted to llama-fit-params (tests/data/estimate/fit_params_cpu.json).
CPU_COMPUTE = ComputeTerms()


@dataclass
class ModelView:
    """One model, from a file or from the catalog: its shape and typed tensor table."""

    label: str
    shape: ModelShape
    tensors: list[TypedTensor]
    basis: list[str]


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
    recipe = catalog.quants.recipes[recipe_name]
    shape = shape_from_entry(entry)
    tensors = typed_layout(entry, recipe, catalog.quants)
    basis = [
        f"weights: per-tensor layout of catalog model '{model_id}' ({entry.gguf_arch}) "
        f"with llama.cpp's {recipe_name} recipe (catalog/quants.yaml), no file read",
    ]
    view = ModelView(label=f"{model_id} {recipe_name}", shape=shape, tensors=tensors, basis=basis)
    catalog.memo()[(model_id, recipe_name)] = view
    return view


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


# Architectures whose load_arch_tensors creates the tied output (TENSOR_DUPLICATED) before
# token_embd, so llama.cpp finds no tensor to share and holds two copies even on one device
# (src/models/gemma3n.cpp, gemma4.cpp, b11434).
OUTPUT_FIRST = frozenset({"gemma3n", "gemma4"})


def has_output_copy(shape: ModelShape, placement: Placement, cpu: int) -> bool:
    """Whether a tied output matrix costs a second copy of token_embd."""
    if not shape.tied_embeddings:
        return False
    return placement.output_device != cpu or shape.arch in OUTPUT_FIRST


def _context_params(request: EstimateRequest) -> ContextParams:
    return ContextParams(
        n_ctx=request.ctx,
        n_seq=request.parallel,
        n_ubatch=min(request.ubatch, request.batch),
        n_batch=request.batch,
        type_k=request.cache_type_k,
        type_v=request.cache_type_v,
        flash_attn=request.flash_attn,
        kv_unified=request.kv_unified,
        swa_full=request.swa_full,
    )


def _check_request(request: EstimateRequest, shape: ModelShape) -> None:
    if (
        shape.n_ctx_train
        and request.ctx // max(1, request.parallel) > shape.n_ctx_train
        and (not request.kv_unified or request.ctx > shape.n_ctx_train)
    ):
        raise EstimateError(
            f"context {request.ctx} is above the model's native {shape.n_ctx_train} tokens "
            f"per sequence",
            hint=f"use --ctx {shape.n_ctx_train * request.parallel} or less",
        )


def _fill(
    view: ModelView,
    devices: list[Device],
    placement: Placement,
    request: EstimateRequest,
    catalog: EstimateCatalog,
    extras: list[Companion] | None = None,
) -> None:
    """Add weights, KV/state, compute and output bytes (and companions) to their devices."""
    cpu = len(devices) - 1
    params = _context_params(request)
    for t in view.tensors:
        if t.mtp:
            continue  # llama.cpp skips nextn tensors unless MTP is loaded
        dev = place_tensor(t, placement, cpu, cpu_moe=request.cpu_moe)
        devices[dev].weights += t.nbytes
        if t.name == "token_embd.weight" and has_output_copy(view.shape, placement, cpu):
            devices[placement.output_device].weights += t.nbytes  # TENSOR_DUPLICATED
    kv = kv_bytes_per_layer(view.shape, params, catalog.quants)
    state = state_bytes_per_layer(view.shape, params)
    for il, dev in enumerate(placement.layer_device):
        devices[dev].kv += kv[il]
        devices[dev].state += state[il]
        devices[dev].layers.append(il)
    compute = compute_bytes(view.shape, params, CPU_COMPUTE)
    for index, device in enumerate(devices):
        if device.layers or index in (placement.output_device, cpu):
            device.compute = compute
    devices[cpu].output = output_bytes(view.shape, params)
    for extra in extras or []:
        dev = _companion_device(extra, placement, cpu)
        devices[dev].weights += extra.weights
        devices[dev].kv += extra.kv
        devices[dev].compute += extra.compute
        devices[dev].draft += extra.total if extra.kind != "mmproj" else 0
        devices[dev].mmproj += extra.weights if extra.kind == "mmproj" else 0


def _companion_device(extra: Companion, placement: Placement, cpu: int) -> int:
    if extra.at_output:
        return placement.output_device
    if extra.on_gpu and cpu > 0 and placement.ngl > 0:
        return 0
    return cpu


def _fits(
    view: ModelView,
    devices: list[Device],
    placement: Placement,
    request: EstimateRequest,
    ctx: _Ctx,
) -> bool:
    trial = [
        Device(d.name, d.budget, d.backend, d.bandwidth_gbps, d.peak_gops, d.unified)
        for d in devices
    ]  # empty copies: same budgets, nothing placed yet
    _fill(view, trial, placement, request, ctx.catalog, ctx.extras)
    return all(d.budget is None or d.total <= d.budget for d in merge_unified(trial)[:-1])


@dataclass(frozen=True)
class _Ctx:
    catalog: EstimateCatalog
    extras: list[Companion]
    overrides: tuple[tuple[re.Pattern[str], int], ...]


def _placement(
    view: ModelView, devices: list[Device], request: EstimateRequest, ctx: _Ctx
) -> Placement:
    n_layer = view.shape.n_layer
    cpu = len(devices) - 1
    if cpu == 0:
        return Placement(0, 0, [cpu] * n_layer, cpu, ctx.overrides)
    if request.n_cpu_moe == "auto":
        return _auto_cpu_moe(view, devices, request, ctx)
    if request.ngl != "auto":
        return _placement_for(view, devices, request, request.ngl, request.n_cpu_moe, ctx)
    return _auto_ngl(view, devices, request, request.n_cpu_moe, ctx)


def _auto_ngl(
    view: ModelView, devices: list[Device], request: EstimateRequest, n_cpu_moe: int, ctx: _Ctx
) -> Placement:
    """The most layers that fit, as --fit does when the user sets nothing."""
    for ngl in range(view.shape.n_layer + 1, -1, -1):
        placement = _placement_for(view, devices, request, ngl, n_cpu_moe, ctx)
        if _fits(view, devices, placement, request, ctx):
            return placement
    return _placement_for(view, devices, request, 0, n_cpu_moe, ctx)


def _auto_cpu_moe(
    view: ModelView, devices: list[Device], request: EstimateRequest, ctx: _Ctx
) -> Placement:
    """`--n-cpu-moe auto`: the fewest leading layers whose experts go to system RAM so that
    everything else fits the GPUs (all layers offloaded unless -ngl says otherwise)."""
    n_layer = view.shape.n_layer
    ngl = n_layer + 1 if request.ngl == "auto" else request.ngl
    if not view.shape.n_expert:
        return _auto_ngl(view, devices, request, 0, ctx) if request.ngl == "auto" else (
            _placement_for(view, devices, request, ngl, 0, ctx)
        )  # fmt: skip
    low, high = 0, n_layer
    if not _fits(view, devices, _placement_for(view, devices, request, ngl, high, ctx), request,
                 ctx):  # fmt: skip
        if request.ngl == "auto":
            return _auto_ngl(view, devices, request, n_layer, ctx)
        return _placement_for(view, devices, request, ngl, n_layer, ctx)
    while low < high:  # fitting is monotonic in N: more experts in RAM never needs more VRAM
        mid = (low + high) // 2
        if _fits(view, devices, _placement_for(view, devices, request, ngl, mid, ctx), request,
                 ctx):  # fmt: skip
            high = mid
        else:
            low = mid + 1
    return _placement_for(view, devices, request, ngl, low, ctx)


def _placement_for(
    view: ModelView,
    devices: list[Device],
    request: EstimateRequest,
    ngl: int,
    n_cpu_moe: int,
    ctx: _Ctx,
) -> Placement:
    gpus = devices[:-1]
    cpu = len(devices) - 1
    n_layer = view.shape.n_layer
    budgets = [d.budget or 0 for d in gpus]
    split = request.tensor_split
    if split is not None and len(split) != len(gpus):
        raise EstimateError(f"--tensor-split has {len(split)} values for {len(gpus)} GPUs")
    layer_device = split_layers(n_layer, ngl, budgets, split)
    output_device = cpu
    if gpus and ngl > n_layer:
        output_device = layer_device[-1] if layer_device else 0
    return Placement(ngl, n_cpu_moe, layer_device, output_device, ctx.overrides)


def _device_rows(devices: list[Device]) -> list[DeviceMemory]:
    rows = []
    for d in devices:
        total = d.total
        short = max(0, total - d.budget) if d.budget is not None else 0
        rows.append(
            DeviceMemory(
                device=d.name,
                weights_bytes=d.weights,
                kv_bytes=d.kv + d.state,
                compute_bytes=d.compute,
                output_bytes=d.output,
                total_bytes=total,
                budget_bytes=d.budget,
                shortfall_bytes=short,
            )
        )
    return rows


def estimate(
    request: EstimateRequest,
    hardware: HardwareProfile,
    *,
    catalog: EstimateCatalog | None = None,
) -> Estimate:
    """Memory per device, whether it fits, and decode/prefill speed, each with its basis."""
    catalog = catalog or load_estimate_catalog(catalog_dir())
    if request.engine == "ds4":
        return estimate_ds4(request, hardware, catalog)
    view = load_model_view(request, catalog)
    if request.engine == "vllm":
        return estimate_vllm(request, hardware, view, catalog)
    if request.engine == "mlx":
        return estimate_mlx(request, hardware, view, catalog)
    devices, placement, extras = _place(request, hardware, view, catalog)
    rows = _device_rows(merge_unified(devices))
    speeds, speed_basis = device_speeds(view, devices, placement, request, catalog)
    speed = speed_estimate(speeds, request, catalog, spec_draft(devices, placement, extras))
    basis = [*view.basis, *memory_basis(request, view), *(b for e in extras for b in e.basis)]
    return Estimate(
        model=view.label,
        memory=_memory(devices, rows),
        fits=all(r.shortfall_bytes == 0 for r in rows),
        speed=speed,
        placement=_placement_info(placement, request, devices),
        basis=[*basis, *speed_basis, *speculative_basis(request, speed), *budget_basis(rows)],
    )


def _place(
    request: EstimateRequest, hardware: HardwareProfile, view: ModelView, catalog: EstimateCatalog
) -> tuple[list[Device], Placement, list[Companion]]:
    """Devices with every buffer filled in, where each layer went, and the companions."""
    _check_request(request, view.shape)
    devices = build_devices(hardware, request, catalog)
    extras = companions(request, view, _context_params(request), catalog, load_model_view)
    overrides = parse_overrides(request.override_tensor, len(devices) - 1)
    placement = _placement(view, devices, request, _Ctx(catalog, extras, overrides))
    _fill(view, devices, placement, request, catalog, extras)
    return devices, placement, extras


def speed_inputs(
    request: EstimateRequest, hardware: HardwareProfile, catalog: EstimateCatalog
) -> list[DeviceSpeed]:
    """The bytes and ops per token on each device that the llama.cpp speed figures rest on.

    For calibration (benchmarks/depth_calibration.py): the roofline with other factors.
    """
    view = load_model_view(request, catalog)
    devices, placement, _ = _place(request, hardware, view, catalog)
    return device_speeds(view, devices, placement, request, catalog)[0]


def budget_basis(rows: list[DeviceMemory]) -> list[str]:
    """Say so when a device has no budget: its fit was not checked."""
    unknown = [r.device for r in rows if r.budget_bytes is None]
    if not unknown:
        return []
    return [
        f"fit: no memory budget known for {', '.join(unknown)} (declare the memory, e.g. "
        "--ram, or use a profile): 'fits' was not checked there"
    ]


def _memory(devices: list[Device], rows: list[DeviceMemory]) -> MemoryEstimate:
    return MemoryEstimate(
        weights_bytes=sum(d.weights for d in devices),
        kv_bytes=sum(d.kv for d in devices),
        state_bytes=sum(d.state for d in devices),
        compute_bytes=sum(d.compute for d in devices),
        output_bytes=sum(d.output for d in devices),
        draft_bytes=sum(d.draft for d in devices),
        mmproj_bytes=sum(d.mmproj for d in devices),
        total_bytes=sum(d.total for d in devices),
        devices=rows,
    )


def _placement_info(
    placement: Placement, request: EstimateRequest, devices: list[Device]
) -> PlacementInfo:
    return PlacementInfo(
        ngl=placement.ngl,
        n_cpu_moe=placement.n_cpu_moe,
        cpu_moe=request.cpu_moe,
        layers={d.name: len(d.layers) for d in devices if d.layers},
        tensor_split=request.tensor_split,
        override_tensor=request.override_tensor,
    )


def merge_unified(devices: list[Device]) -> list[Device]:
    """A unified-memory GPU is reported once: host-side buffers count against its budget."""
    unified = [d for d in devices[:-1] if d.unified]
    if not unified:
        return devices
    host = devices[-1]
    gpu = unified[0]
    merged = Device(gpu.name, gpu.budget, gpu.backend, gpu.bandwidth_gbps, gpu.peak_gops, True)
    for part in (gpu, host):
        merged.weights += part.weights
        merged.kv += part.kv
        merged.state += part.state
        merged.compute += part.compute
        merged.output += part.output
        merged.draft += part.draft
        merged.mmproj += part.mmproj
    return [d if d is not gpu else merged for d in devices[:-1]]


def _compute_basis(request: EstimateRequest, view: ModelView) -> str:
    line = (
        "compute: CPU formula fitted to llama-fit-params b11434 (tests/data/estimate/"
        "fit_params_cpu.json: median 1.5 %, worst 3.2 % off; MLA models 3.5-17 % off)"
    )
    if view.shape.arch in ("deepseek2", "glm-dsa", "deepseek32"):
        line += "; this is an MLA model: expect the buffer to be larger than shown"
    if request.backend != "cpu":
        line += (
            f"; {request.backend}: the same formula is reused per device and NOT measured on "
            "that backend (no GPU was available to calibrate; GPU graphs and kernels differ), "
            "and the host-side buffer of an offloaded run is over-counted"
        )
    return line


def memory_basis(request: EstimateRequest, view: ModelView) -> list[str]:
    params = _context_params(request)
    swa = " (SWA full)" if params.swa_full else ""
    lines = [
        f"kv: llama.cpp layout, ctx {request.ctx} padded to 256, {request.parallel} seq, "
        f"K {params.type_k} / V {params.type_v}, window {view.shape.swa_window or 'none'}{swa}",
        _compute_basis(request, view),
        "output: n_vocab x 4 bytes per sequence (logits buffer)",
    ]
    if view.shape.is_recurrent:
        lines.append("state: f32 conv + recurrent state per sequence (llama_memory_recurrent)")
    if any(t.mtp for t in view.tensors) and request.spec_type != "mtp":
        lines.append("mtp: nextn layers not loaded (no --spec-type mtp)")
    return lines
