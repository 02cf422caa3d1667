"""Evaluate one candidate: placement search with the estimator, or a measured prediction for
engines the estimator does not model (ds4). Estimates are memoised in the session."""

from __future__ import annotations

import math

from stackctl.lock import hardware_sha256
from stackctl.models.estimate import Estimate
from stackctl.models.hardware import Accelerator, HardwareProfile
from stackctl.models.policy import Policy
from stackctl.models.resolved import Placement
from stackctl.resolve.candidate import FULL, GIB, Candidate
from stackctl.resolve.session import Session, estimate_cached, request_for


def _gpu_total(result: Estimate) -> int:
    return sum(d.total_bytes for d in result.memory.devices if d.device != "host")


def _gpu_budget(result: Estimate) -> int:
    return sum(d.budget_bytes or 0 for d in result.memory.devices if d.device != "host")


def _moe_offload(
    session: Session, c: Candidate, hw: HardwareProfile, key: str, users: int, full: Estimate
) -> tuple[Estimate | str, int]:
    """Smallest --n-cpu-moe N whose remaining weights fit the GPUs."""
    all_cpu = estimate_cached(session, request_for(c, hw, users, ngl=FULL, cpu_moe=True), hw, key)
    if isinstance(all_cpu, str) or not all_cpu.fits:
        return all_cpu, 0
    n_layer = c.entry.n_layer
    per_layer = max((_gpu_total(full) - _gpu_total(all_cpu)) / n_layer, 1.0)
    n = min(n_layer, math.ceil((_gpu_total(full) - _gpu_budget(full)) / per_layer))
    for _ in range(4):
        trial = estimate_cached(session, request_for(c, hw, users, ngl=FULL, n_cpu_moe=n), hw, key)
        if isinstance(trial, str) or trial.fits or n >= n_layer:
            return trial, n
        n = min(n_layer, n + max(1, n_layer // 16))
    return all_cpu, n_layer


def _most_layers(
    session: Session, c: Candidate, hw: HardwareProfile, key: str, users: int, full: Estimate
) -> Estimate | str:
    """The estimate `-ngl auto` gives (the most layers that fit), found from a guess.

    The estimator's auto search tries every layer count from the top down; fitting is
    monotonic in the layer count (each layer moved to the GPU only adds GPU bytes), so starting
    at the count the full estimate's budget/need ratio suggests and stepping to the boundary
    finds the same count in two or three estimates instead of up to n_layer. The estimate for
    an explicit count is the one auto returns for it: it depends only on the placement."""
    n_layer = c.entry.n_layer
    need = _gpu_total(full)
    if need <= 0 or any(a.unified for a in hw.accelerators):
        # unified memory: the estimator's auto search checks no GPU budget there (host bytes
        # are the GPU's); ask it directly, it stops at the first try
        return estimate_cached(session, request_for(c, hw, users, ngl="auto"), hw, key)
    n = max(0, min(n_layer, int(n_layer * _gpu_budget(full) / need)))

    def trial(layers: int) -> Estimate | str:
        return estimate_cached(session, request_for(c, hw, users, ngl=layers), hw, key)

    best = trial(n)
    if isinstance(best, str):
        return estimate_cached(session, request_for(c, hw, users, ngl="auto"), hw, key)
    if _gpus_fit(best):
        while n < n_layer:  # n_layer + 1 (output layer too) is the full offload: no fit
            up = trial(n + 1)
            if isinstance(up, str) or not _gpus_fit(up):
                break
            n, best = n + 1, up
        return best
    while n > 0:
        n -= 1
        best = trial(n)
        if isinstance(best, str) or _gpus_fit(best):
            return best
    return best  # nothing fits: the all-CPU placement, as auto returns


def _gpus_fit(result: Estimate) -> bool:
    """The auto search's test: every GPU within its budget (system RAM is not checked)."""
    return all(d.shortfall_bytes == 0 for d in result.memory.devices if d.device != "host")


def _tensor_split(hw: HardwareProfile) -> list[float] | None:
    if len(hw.accelerators) < 2:
        return None
    budgets = [a.memory_budget_bytes or a.memory_bytes or 0 for a in hw.accelerators]
    low = min(budgets) or 1
    return [round(b / low, 2) for b in budgets]


def place_llamacpp(session: Session, c: Candidate, hw: HardwareProfile, users: int) -> None:
    """Full offload, else MoE experts to RAM (--n-cpu-moe N), else as many layers as fit."""
    key = hardware_sha256(hw)
    if c.backend == "cpu":
        result = estimate_cached(session, request_for(c, hw, users), hw, key)
        _take(c, result, Placement(ngl=0))
        return
    split = _tensor_split(hw)
    full = estimate_cached(session, request_for(c, hw, users, ngl=FULL), hw, key)
    if isinstance(full, str) or full.fits:
        _take(c, full, Placement(ngl=FULL, tensor_split=split))
        return
    if c.entry.moe is not None:
        moe, n = _moe_offload(session, c, hw, key, users, full)
        if not isinstance(moe, str) and moe.fits:
            c.basis.append(
                f"experts of the first {n} of {c.entry.n_layer} layers in system RAM "
                "(--n-cpu-moe): decode is bound by system-RAM bandwidth"
            )
            _take(c, moe, Placement(ngl=FULL, n_cpu_moe=n, tensor_split=split))
            return
    auto = _most_layers(session, c, hw, key, users, full)
    ngl = auto.placement.ngl if not isinstance(auto, str) and auto.placement else 0
    if not isinstance(auto, str) and auto.fits and ngl > 0:
        c.basis.append(f"{ngl} of {c.entry.n_layer + 1} layers on the GPU, the rest on the CPU")
    _take(c, auto, Placement(ngl=ngl, tensor_split=split if ngl else None))


def _take(c: Candidate, result: Estimate | str, placement: Placement) -> None:
    c.evaluated = True
    c.placement = placement
    if isinstance(result, str):
        c.reject = f"estimator: {result}"
        return
    c.estimate = result
    c.tg, c.tg_range = result.speed.tg_tps, result.speed.tg_tps_range
    c.pp, c.pp_range = result.speed.pp_tps, result.speed.pp_tps_range
    c.tg_ceiling, c.pp_ceiling = result.speed.tg_tps_ceiling, result.speed.pp_tps_ceiling
    c.memory = result.memory.total_bytes
    if not result.fits:
        short = max(d.shortfall_bytes for d in result.memory.devices)
        c.reject = f"does not fit: {short / GIB:.1f} GiB short"


def _ds4_need(c: Candidate, policy: Policy, context: int) -> tuple[int, str] | None:
    """Bytes ds4 holds for this file and context (runtime.yaml ds4), and the basis in words."""
    mem = policy.runtime.ds4
    gb = mem.weights_gb.get(c.artefact.quant) if mem else None
    if mem is None or gb is None:
        return None
    kv = mem.kv_gb_per_mtoken * 1e9 * context / 1048576
    basis = (
        f"ds4 memory: GGUF ~{gb:g} GB ({mem.weights_source}) + KV ~{kv / 1e9:.1f} GB at "
        f"{context} tokens ({mem.kv_source})"
    )
    return int(gb * 1e9 + kv), basis


def _ds4_short(acc: Accelerator, need: int, budget: int) -> str:
    have = budget / GIB
    why = f"ds4 needs ~{need / GIB:.1f} GiB on the GPU, the box gives {have:.0f} GiB"
    if acc.vendor == "apple" and acc.memory_bytes and need < acc.memory_bytes:
        mb = math.ceil(need / 2**20 / 1024) * 1024
        why += (
            f" (macOS's default wired limit); `sudo sysctl iogpu.wired_limit_mb={mb}` "
            "or more would fit it, leaving the rest of RAM to macOS (left to the user: "
            "apple-wired-limit)"
        )
    elif acc.memory_bytes and need >= acc.memory_bytes:
        why += f"; a box with more than {need / GIB:.0f} GiB of memory is needed"
    return why


def _ds4_ceilings(
    c: Candidate, acc: Accelerator, weights: float
) -> tuple[float | None, float | None]:
    """Physics over ds4's scaled measurement: a token reads the file's active share, a prompt
    token does 2 x active parameters of work at the GPU's FP16 peak (None: a figure unknown)."""
    active, total = c.entry.params_active, c.entry.params_total
    if not (active and total and weights):
        return None, None
    tg = acc.bandwidth_gbps * 1e9 / (weights * active / total) if acc.bandwidth_gbps else None
    pp = acc.peak_tflops_fp16 * 1e3 / (2 * active) if acc.peak_tflops_fp16 else None
    return tg, pp


def place_ds4(c: Candidate, hw: HardwareProfile, policy: Policy, users: int = 1) -> None:
    """ds4 has no estimator model: its own memory figures, and the published measurement
    nearest in memory bandwidth scaled by bandwidth."""
    c.evaluated = True
    acc = hw.accelerators[0] if hw.accelerators else None
    if acc is None:
        c.reject = "ds4 needs a Metal or CUDA GPU"
        return
    budget = acc.memory_budget_bytes or acc.memory_bytes or 0
    sized = _ds4_need(c, policy, c.ctx * users)
    if sized is None:
        c.reject = f"no ds4 memory figure for {c.artefact.quant} (catalog/runtime.yaml ds4)"
        return
    need, mem_basis = sized
    if budget < need:
        c.reject = _ds4_short(acc, need, budget)
        return
    rows = [m for m in c.engine.measured if (m.chip == "gb10") == (c.backend == "cuda")]
    if not rows or not acc.bandwidth_gbps:
        c.reject = "no ds4 measurement for this kind of device to predict from"
        return
    bw = acc.bandwidth_gbps
    ref = min(rows, key=lambda m: (abs(m.bandwidth_gbps - bw), m.chip))
    ratio = bw / ref.bandwidth_gbps
    c.tg, c.pp = round(ref.tg_tps * ratio, 1), round(ref.pp_tps * ratio, 1)
    c.tg_range = (round(c.tg * 0.75, 1), round(c.tg * 1.1, 1))
    c.pp_range = (round(c.pp * 0.75, 1), round(c.pp * 1.1, 1))
    mem = policy.runtime.ds4
    weights = mem.weights_gb[c.artefact.quant] * 1e9 if mem else 0.0  # sized: it has the quant
    c.tg_ceiling, c.pp_ceiling = _ds4_ceilings(c, acc, weights)
    c.memory = need
    c.placement = Placement(ngl=FULL)
    c.basis.append(
        f"ds4: {ref.tg_tps:g} tok/s decode measured on {ref.chip} ({ref.source}), the "
        f"measurement nearest in bandwidth, scaled by {bw:g}/{ref.bandwidth_gbps:g} GB/s; "
        "range -25%/+10% (policy)"
    )
    c.basis.append(mem_basis)


def decode_at(
    session: Session, c: Candidate, hw: HardwareProfile, users: int, depth: int
) -> float | None:
    """Decode tok/s of the evaluated candidate with `depth` tokens already in its cache (None
    for engines the estimator does not model)."""
    if c.engine.name != "llama.cpp":
        return None
    spec = c.speculative.request_fields() if c.speculative else {}
    result = estimate_placed(session, c, hw, users, depth=depth, **spec)
    if isinstance(result, str):
        return None
    plain = result.speed.tg_tps_plain or result.speed.tg_tps
    return c.speculative.calibrated(result.speed.tg_tps, plain) if c.speculative else plain


def estimate_placed(
    session: Session, c: Candidate, hw: HardwareProfile, users: int, **extra: object
) -> Estimate | str:
    """The estimate of an evaluated candidate at its placement, with `extra` request fields."""
    place = dict(extra)
    if c.backend != "cpu":
        place |= {"ngl": c.placement.ngl, "n_cpu_moe": c.placement.n_cpu_moe}
    return estimate_cached(session, request_for(c, hw, users, **place), hw, hardware_sha256(hw))
