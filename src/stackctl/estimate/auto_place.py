"""Where the layers go when the user leaves it open: `-ngl auto` (as many layers as fit, as
`--fit` does) and `--n-cpu-moe auto` (the fewest layers with experts in system RAM)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stackctl.errors import EstimateError
from stackctl.estimate.buffers import fill_devices
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.companions import Companion
from stackctl.estimate.placement import Device, Placement, split_layers
from stackctl.estimate.view import ModelView
from stackctl.models.estimate import EstimateRequest


def _fits(
    view: ModelView,
    devices: list[Device],
    placement: Placement,
    request: EstimateRequest,
    ctx: PlaceCtx,
) -> bool:
    trial = [
        Device(d.name, d.budget, d.backend, d.bandwidth_gbps, d.peak_gops, d.unified)
        for d in devices
    ]  # empty copies: same budgets, nothing placed yet
    fill_devices(view, trial, placement, request, ctx.catalog, ctx.extras)
    if any(d.unified for d in trial[:-1]):
        # One pool: the host's buffers already count against the unified GPU's budget, so
        # moving layers to the host frees nothing and the layer count is not chosen by fit.
        # All layers stay on the GPU and `fits` reports any shortfall
        # (tests/unit/test_estimate_bounds.py, ngl auto on unified memory).
        return True
    return all(d.budget is None or d.total <= d.budget for d in trial[:-1])


@dataclass(frozen=True)
class PlaceCtx:
    catalog: EstimateCatalog
    extras: list[Companion]
    overrides: tuple[tuple[re.Pattern[str], int], ...]


def choose_placement(
    view: ModelView, devices: list[Device], request: EstimateRequest, ctx: PlaceCtx
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
    view: ModelView, devices: list[Device], request: EstimateRequest, n_cpu_moe: int, ctx: PlaceCtx
) -> Placement:
    """The most layers that fit, as --fit does when the user sets nothing."""
    for ngl in range(view.shape.n_layer + 1, -1, -1):
        placement = _placement_for(view, devices, request, ngl, n_cpu_moe, ctx)
        if _fits(view, devices, placement, request, ctx):
            return placement
    return _placement_for(view, devices, request, 0, n_cpu_moe, ctx)


def _auto_cpu_moe(
    view: ModelView, devices: list[Device], request: EstimateRequest, ctx: PlaceCtx
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
    ctx: PlaceCtx,
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
