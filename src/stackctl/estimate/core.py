"""`estimate(request, hardware)`: memory per device, fit, and speed with its basis.

The catalogs are read from `catalog_dir()` unless the caller passes `catalog=` (tests and
the resolver can load them once with `load_estimate_catalog`). The steps live below this
module: the model view (view.py), where layers go (auto_place.py), the bytes on each device
(buffers.py), speed (devices.py, speed.py, speculative.py) and the basis (memory_basis.py).
"""

from __future__ import annotations

from stackctl.errors import EstimateError
from stackctl.estimate.auto_place import PlaceCtx, choose_placement
from stackctl.estimate.buffers import (
    context_params,
    device_rows,
    fill_devices,
    memory_totals,
    merge_unified,
)
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog, lookup_quant
from stackctl.estimate.companions import Companion, companions
from stackctl.estimate.devices import build_devices, device_speeds
from stackctl.estimate.engines import estimate_ds4, estimate_mlx, estimate_vllm
from stackctl.estimate.memory_basis import budget_basis, memory_basis
from stackctl.estimate.mlx_speed import mlx_quant
from stackctl.estimate.placement import ALL_LAYERS, Device, Placement, parse_overrides
from stackctl.estimate.shape import ModelShape
from stackctl.estimate.speculative import spec_draft, speculative_basis, speed_estimate
from stackctl.estimate.speed import DeviceSpeed
from stackctl.estimate.view import ModelView, load_model_view
from stackctl.models.estimate import Estimate, EstimateRequest, PlacementInfo
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

__all__ = ["ModelView", "estimate", "load_model_view", "speed_inputs"]


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
    if request.engine != "mlx" and not request.gguf_path and _is_mlx_build(request, catalog):
        raise EstimateError(
            f"'{request.quant}' is an MLX build: {request.engine} does not load it",
            hint="--engine mlx, or a GGUF quant of like bits (Q4_K_M, Q8_0)",
        )
    view = load_model_view(request, catalog)
    if request.engine == "vllm":
        return estimate_vllm(request, hardware, view, catalog)
    if request.engine == "mlx":
        return _mlx(request, hardware, view, catalog)
    devices, placement, extras = _place(request, hardware, view, catalog)
    rows = device_rows(merge_unified(devices))
    speeds, speed_basis = device_speeds(view, devices, placement, request, catalog)
    speed = speed_estimate(speeds, request, catalog, spec_draft(devices, placement, extras))
    basis = [*view.basis, *memory_basis(request, view), *(b for e in extras for b in e.basis)]
    return Estimate(
        model=view.label,
        memory=memory_totals(devices, rows),
        fits=all(r.shortfall_bytes == 0 for r in rows),
        speed=speed,
        placement=_placement_info(placement, request, devices),
        basis=[*basis, *speed_basis, *speculative_basis(request, speed), *budget_basis(rows)],
    )


def _is_mlx_build(request: EstimateRequest, catalog: EstimateCatalog) -> bool:
    return lookup_quant(request.quant, catalog).startswith("MLX_")


def _mlx(
    request: EstimateRequest, hardware: HardwareProfile, view: ModelView, catalog: EstimateCatalog
) -> Estimate:
    """mlx-lm: its memory rule, and llama.cpp's figures for the GGUF of like bits on this box
    scaled by the published same-box ratio (estimate/mlx_speed.py)."""
    if request.gguf_path:
        raise EstimateError("mlx-lm loads MLX builds, not a GGUF file", hint="--model and --quant")
    acc = hardware.accelerators[0] if hardware.accelerators else None
    if acc is None or acc.vendor != "apple":
        raise EstimateError("mlx-lm runs only on Apple silicon (Metal)", hint="--engine llama.cpp")
    if request.spec_type != "none" or request.draft_model or request.draft_gguf:
        raise EstimateError(
            "mlx-lm with speculative decoding is not modelled: the published ratios are of "
            "plain decode",
            hint="--spec-type none",
        )
    if request.cpu_moe or request.n_cpu_moe or request.override_tensor or request.tensor_split:
        raise EstimateError(
            "mlx-lm runs the whole model on the GPU: no expert offload, -ot or tensor split",
            hint="drop --n-cpu-moe / --cpu-moe / -ot / -ts, or --engine llama.cpp",
        )
    rules, quant = mlx_quant(request.quant, catalog)
    # MLX runs the whole model on the GPU: the twin does too
    update = {"engine": "llama.cpp", "quant": rules.comparable[quant], "ngl": ALL_LAYERS}
    base = estimate(request.model_copy(update=update), hardware, catalog=catalog)
    return estimate_mlx(request, hardware, view, catalog, (base, rules, quant))


def _place(
    request: EstimateRequest, hardware: HardwareProfile, view: ModelView, catalog: EstimateCatalog
) -> tuple[list[Device], Placement, list[Companion]]:
    """Devices with every buffer filled in, where each layer went, and the companions."""
    _check_request(request, view.shape)
    devices = build_devices(hardware, request, catalog)
    extras = companions(request, view, context_params(request), catalog, load_model_view)
    overrides = parse_overrides(request.override_tensor, len(devices) - 1)
    placement = choose_placement(view, devices, request, PlaceCtx(catalog, extras, overrides))
    fill_devices(view, devices, placement, request, catalog, extras)
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
