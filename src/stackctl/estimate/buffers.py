"""Bytes on each device: weights, KV and state, compute and output buffers, companions.

Also the memory view of a placement: unified-memory devices merged, rows per device, totals.
"""

from __future__ import annotations

from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.companions import Companion
from stackctl.estimate.gpu_buffers import ffn_width, gpu_compute_bytes, host_compute_bytes
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
    PlaceKey,
    Placement,
    place_by_key,
    place_key,
    place_tensor,
)
from stackctl.estimate.shape import ModelShape
from stackctl.estimate.view import ModelView
from stackctl.models.estimate import DeviceMemory, EstimateRequest, MemoryEstimate

# CPU compute buffer, fitted to llama-fit-params (tests/data/estimate/fit_params_cpu.json).
CPU_COMPUTE = ComputeTerms()


# Architectures whose load_arch_tensors creates the tied output (TENSOR_DUPLICATED) before
# token_embd, so llama.cpp finds no tensor to share and holds two copies even on one device
# (src/models/gemma3n.cpp, gemma4.cpp, b11434).
OUTPUT_FIRST = frozenset({"gemma3n", "gemma4"})


def has_output_copy(shape: ModelShape, placement: Placement, cpu: int) -> bool:
    """Whether a tied output matrix costs a second copy of token_embd."""
    if not shape.tied_embeddings:
        return False
    return placement.output_device != cpu or shape.arch in OUTPUT_FIRST


def context_params(request: EstimateRequest) -> ContextParams:
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


def fill_devices(
    view: ModelView,
    devices: list[Device],
    placement: Placement,
    request: EstimateRequest,
    catalog: EstimateCatalog,
    extras: list[Companion] | None = None,
) -> None:
    """Add weights, KV/state, compute and output bytes (and companions) to their devices."""
    cpu = len(devices) - 1
    params = context_params(request)
    cpu_moe = request.cpu_moe
    if placement.overrides:  # -ot patterns place by name: tensor by tensor
        placed = [(place_tensor(t, placement, cpu, cpu_moe=cpu_moe), place_key(t)[0], t.nbytes)
                  for t in view.tensors if not t.mtp]  # fmt: skip
    else:
        placed = [(place_by_key(key, placement, cpu, cpu_moe=cpu_moe), key[0], nbytes)
                  for key, nbytes in weight_groups(view)]  # fmt: skip
    copy = has_output_copy(view.shape, placement, cpu)
    for dev, token_embd, nbytes in placed:
        devices[dev].weights += nbytes
        if token_embd and copy:
            devices[placement.output_device].weights += nbytes  # TENSOR_DUPLICATED
    kv = kv_bytes_per_layer(view.shape, params, catalog.quants)
    state = state_bytes_per_layer(view.shape, params)
    for il, dev in enumerate(placement.layer_device):
        devices[dev].kv += kv[il]
        devices[dev].state += state[il]
        devices[dev].layers.append(il)
    for index, device in enumerate(devices):
        if index == cpu:
            device.compute = _host_compute(view, placement, params, request, cpu)
        elif device.layers or index == placement.output_device:
            device.compute = gpu_compute_bytes(view.shape, params, ffn_width(view))
    devices[cpu].output = output_bytes(view.shape, params)
    for extra in extras or []:
        dev = _companion_device(extra, placement, cpu)
        devices[dev].weights += extra.weights
        devices[dev].kv += extra.kv
        devices[dev].compute += extra.compute
        devices[dev].draft += extra.total if extra.kind != "mmproj" else 0
        devices[dev].mmproj += extra.weights if extra.kind == "mmproj" else 0


def weight_groups(view: ModelView) -> list[tuple[PlaceKey, int]]:
    """Weight bytes of the view's tensors per placement key (llama.cpp skips nextn tensors
    unless MTP is loaded: they are left out); kept on the view, which placements share."""
    known: list[tuple[PlaceKey, int]] | None = view.derived.get("weight_groups")
    if known is None:
        sums: dict[PlaceKey, int] = {}
        for t in view.tensors:
            if not t.mtp:
                key = place_key(t)
                sums[key] = sums.get(key, 0) + t.nbytes
        known = view.derived["weight_groups"] = list(sums.items())
    return known


def cpu_does_layer_work(placement: Placement, request: EstimateRequest, cpu: int) -> bool:
    """Whether the CPU runs any part of a layer or the output: then it needs the CPU formula;
    otherwise (every layer and the output on GPUs) it holds only the graph's inputs."""
    return (
        cpu == 0
        or placement.output_device == cpu
        or any(dev == cpu for dev in placement.layer_device)
        or placement.n_cpu_moe > 0
        or request.cpu_moe
        or bool(placement.overrides)
    )


def _host_compute(
    view: ModelView, placement: Placement, params: ContextParams, request: EstimateRequest, cpu: int
) -> int:
    if cpu_does_layer_work(placement, request, cpu):
        return compute_bytes(view.shape, params, CPU_COMPUTE)
    return host_compute_bytes(view.shape, params)


def _companion_device(extra: Companion, placement: Placement, cpu: int) -> int:
    if extra.at_output:
        return placement.output_device
    if extra.on_gpu and cpu > 0 and placement.ngl > 0:
        return 0
    return cpu


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


def device_rows(devices: list[Device]) -> list[DeviceMemory]:
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


def memory_totals(devices: list[Device], rows: list[DeviceMemory]) -> MemoryEstimate:
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
