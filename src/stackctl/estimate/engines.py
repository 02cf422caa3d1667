"""Memory rules of the engines other than llama.cpp, kept short, where the resolver needs them.

vLLM (engines.md section 6.1, config/cache.py): the instance takes `--gpu-memory-utilization`
(default 0.92) of each GPU's total memory as one pool and fills what the weights and the
activation profile run leave with the paged KV cache; tensor parallelism splits weights and
KV evenly. It does not load GGUF files (0.33 has no gguf quant), so the weights here are the
per-tensor layout at the bits of the quant asked for; the activation peak is *assumed* to be
the llama.cpp-style graph over `vllm_profile_tokens` tokens (vLLM measures it at start-up).
MLX (engines.md section 7): weights and a KV cache that grows in 256-token steps inside the
wired limit (the profile's GPU budget); no compute buffer is reserved up front (lazy). Its speed
is llama.cpp's for the GGUF of like bits on the same box, scaled by published same-box runs of
both engines (mlx_speed.py).
ds4 (engines.md section 8): only DeepSeek V4 Flash, from the sizes its README states.
"""

from __future__ import annotations

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import EstimateCatalog, lookup_model
from stackctl.estimate.devices import build_devices
from stackctl.estimate.memory import (
    ComputeTerms,
    ContextParams,
    compute_bytes,
    kv_bytes_per_layer,
    state_bytes_per_layer,
)
from stackctl.estimate.mlx_speed import (
    bits_of,
    decode_bound,
    scaled_speed,
    unmeasured_span,
    verdict,
)
from stackctl.estimate.placement import Device
from stackctl.estimate.speed import (
    TTFT_PROMPT,
    DeviceSpeed,
    active_share,
    as_speed_estimate,
    speed_figures,
)
from stackctl.estimate.view import ModelView
from stackctl.models.catalog import MlxRules
from stackctl.models.estimate import (
    DeviceMemory,
    Estimate,
    EstimateRequest,
    MemoryEstimate,
    SpeedEstimate,
)
from stackctl.models.hardware import HardwareProfile


def _params(request: EstimateRequest, ubatch: int) -> ContextParams:
    return ContextParams(
        n_ctx=request.ctx,
        n_seq=request.parallel,
        n_ubatch=ubatch,
        n_batch=max(ubatch, 1),
        type_k="bf16",
        type_v="bf16",
        kv_unified=True,
    )


def _gpus(
    request: EstimateRequest, hardware: HardwareProfile, cat: EstimateCatalog
) -> list[Device]:
    gpus = build_devices(hardware, request, cat)[:-1]
    if not gpus:
        raise EstimateError(
            f"{request.engine} needs a GPU in the hardware profile and a GPU --backend"
        )
    return gpus


def _speed(
    view: ModelView, gpu: Device, share: int, request: EstimateRequest, cat: EstimateCatalog
) -> SpeedEstimate:
    """Roofline on one GPU holding 1/share of the active weights (tensor parallel)."""
    dev = DeviceSpeed(gpu.name, gpu.bandwidth_gbps, gpu.peak_gops, gpu.backend)
    for t in view.tensors:
        if not t.mtp:
            dev.weight_bytes += t.nbytes * active_share(t, view.shape) / share
            if len(t.shape) >= 2:
                dev.weight_ops += 2.0 * t.n_elements * active_share(t, view.shape) / share
    return as_speed_estimate(speed_figures([dev], request.depth, cat.backends), request.depth)


def estimate_vllm(
    request: EstimateRequest, hardware: HardwareProfile, view: ModelView, cat: EstimateCatalog
) -> Estimate:
    rules = cat.backends.engines
    gpus = _gpus(request, hardware, cat)
    n = len(gpus)
    util = request.gpu_memory_utilization or rules.vllm_gpu_memory_utilization
    params = _params(request, rules.vllm_profile_tokens)
    weights = view.loaded_bytes()
    act = compute_bytes(view.shape, params, ComputeTerms())
    kv = sum(kv_bytes_per_layer(view.shape, params, cat.quants))
    state = sum(state_bytes_per_layer(view.shape, params))
    per_token = max(1, kv // max(request.ctx, 1))
    rows, capacity = [], 0
    for acc, gpu in zip(hardware.accelerators, gpus, strict=False):
        pool = int(util * (acc.memory_bytes or gpu.budget or 0))
        need = weights // n + act + (kv + state) // n
        capacity += max(0, pool - weights // n - act - state // n)
        rows.append(
            DeviceMemory(
                device=gpu.name,
                weights_bytes=weights // n,
                kv_bytes=max(0, pool - weights // n - act),
                compute_bytes=act,
                total_bytes=max(pool, need),
                budget_bytes=pool,
                shortfall_bytes=max(0, need - pool),
            )
        )
    memory = MemoryEstimate(
        weights_bytes=weights,
        kv_bytes=kv,
        state_bytes=state,
        compute_bytes=act * n,
        total_bytes=sum(r.total_bytes for r in rows),
        devices=rows,
        kv_capacity_tokens=capacity // per_token,
    )
    basis = [
        *view.basis,
        f"vllm: pool = {util:.2f} x GPU memory per GPU, tensor parallel {n}; weights at the "
        "bits of the quant asked for (vLLM loads no GGUF); KV bf16, paged; activations assumed "
        f"= llama.cpp-style graph over {rules.vllm_profile_tokens} tokens (vLLM profiles them)",
        f"vllm: the KV pool holds {memory.kv_capacity_tokens} tokens for ctx {request.ctx}",
    ]
    return Estimate(
        model=view.label,
        memory=memory,
        fits=all(r.shortfall_bytes == 0 for r in rows),
        speed=_speed(view, gpus[0], n, request, cat),
        basis=basis,
    )


def estimate_mlx(
    request: EstimateRequest,
    hardware: HardwareProfile,
    view: ModelView,
    cat: EstimateCatalog,
    twin: tuple[Estimate, MlxRules, str],
) -> Estimate:
    """MLX's memory rule, and its speed from `twin`: llama.cpp's estimate of the GGUF of like
    bits on the same box, with the MLX rules and the build's name in them
    (estimate/mlx_speed.py)."""
    gpu = _gpus(request, hardware, cat)[0]
    params = _params(request, 512)
    weights = view.loaded_bytes()
    kv = sum(kv_bytes_per_layer(view.shape, params, cat.quants))
    state = sum(state_bytes_per_layer(view.shape, params))
    total = weights + kv + state
    short = max(0, total - gpu.budget) if gpu.budget is not None else 0
    row = DeviceMemory(
        device=gpu.name,
        weights_bytes=weights,
        kv_bytes=kv + state,
        compute_bytes=0,
        total_bytes=total,
        budget_bytes=gpu.budget,
        shortfall_bytes=short,
    )
    memory = MemoryEstimate(
        weights_bytes=weights,
        kv_bytes=kv,
        state_bytes=state,
        compute_bytes=0,
        total_bytes=total,
        devices=[row],
    )
    base, rules, quant = twin
    entry = cat.models[lookup_model(request.model or "", cat)]
    share = 1.0
    if entry.moe is not None and entry.params_active and entry.params_total:
        share = entry.params_active / entry.params_total
    acc = hardware.accelerators[0] if hardware.accelerators else None
    bound = decode_bound(acc.bandwidth_gbps if acc else None, weights, share)
    v = verdict(rules, entry.id, entry.moe is not None, quant)
    span = unmeasured_span(rules, bits_of(rules, quant))
    speed, speed_line = scaled_speed(base.speed, rules.comparable[quant], v, span, bound)
    basis = [
        *view.basis,
        "mlx: weights + bf16 KV (256-token steps) inside the wired limit (profile GPU budget "
        "minus the OS reserve); activations are allocated lazily and not counted",
        speed_line,
    ]
    return Estimate(model=view.label, memory=memory, fits=short == 0, speed=speed, basis=basis)


def estimate_ds4(
    request: EstimateRequest, hardware: HardwareProfile, cat: EstimateCatalog
) -> Estimate:
    rules = cat.backends.engines
    if "deepseek-v4" not in request.model.lower():
        raise EstimateError("ds4 runs only DeepSeek V4 Flash", hint="--model deepseek-v4-flash")
    quant = next((q for q in rules.ds4_weights_bytes if q in request.quant.lower()), None)
    if quant is None:
        known = ", ".join(rules.ds4_weights_bytes)
        raise EstimateError(
            f"ds4: no stated size for quant '{request.quant}'", hint=f"known: {known}"
        )
    devices = build_devices(hardware, request, cat)
    dev = devices[0]
    weights = rules.ds4_weights_bytes[quant]
    kv = int(rules.ds4_kv_bytes_per_token * request.ctx)
    short = max(0, weights + kv - dev.budget) if dev.budget is not None else 0
    row = DeviceMemory(
        device=dev.name,
        weights_bytes=weights,
        kv_bytes=kv,
        compute_bytes=0,
        total_bytes=weights + kv,
        budget_bytes=dev.budget,
        shortfall_bytes=short,
    )
    total_params = (cat.models["deepseek-v4-flash"].params_total or 284) * 1e9
    active = rules.ds4_active_params * weights / total_params  # at the file's bytes per param
    bw = (dev.bandwidth_gbps or 0.0) * 1e9
    eff, (low, high) = rules.ds4_decode_efficiency, rules.ds4_decode_range
    # prefill: the llama.cpp roofline of the same device over the active parameters (ds4
    # publishes no prefill figure; its Metal/CUDA kernels are assumed no faster)
    roof = DeviceSpeed(dev.name, dev.bandwidth_gbps, dev.peak_gops, dev.backend,
                       weight_bytes=active, weight_ops=2.0 * rules.ds4_active_params,
                       bw_span=dev.bandwidth_span, peak_span=dev.peak_span)  # fmt: skip
    prefill = speed_figures([roof], request.depth, cat.backends)
    tg = eff * bw / active
    speed = SpeedEstimate(
        tg_tps=round(tg, 2),
        tg_tps_range=(round(low * bw / active, 2), round(high * bw / active, 2)),
        pp_tps=prefill.pp,
        pp_tps_range=prefill.pp_range,
        depth=request.depth,
        ttft_s=round(TTFT_PROMPT / prefill.pp + 1.0 / tg, 3) if prefill.pp and tg else 0.0,
        tg_tps_ceiling=prefill.tg_ceiling,  # the same device and active bytes
        pp_tps_ceiling=prefill.pp_ceiling,
    )
    basis = [
        f"ds4: {quant} weights {weights / 1e9:.0f} GB and KV {rules.ds4_kv_bytes_per_token:.0f} "
        "bytes per token of context, from antirez/ds4's README (engines.md section 8); "
        f"decode roofline over {rules.ds4_active_params / 1e9:.0f}B active parameters at "
        f"the file's bytes per parameter, efficiency {eff} fitted to ds4's M3 Ultra figure "
        "(27.4 t/s) and checked on its DGX Spark figure (13.8 t/s, within the range); "
        "prefill: llama.cpp's roofline for this device over the active parameters (ds4 "
        "states no prefill figure)",
    ]
    memory = MemoryEstimate(
        weights_bytes=weights, kv_bytes=kv, compute_bytes=0, total_bytes=weights + kv, devices=[row]
    )
    return Estimate(
        model=f"deepseek-v4-flash {quant}", memory=memory, fits=short == 0, speed=speed, basis=basis
    )
