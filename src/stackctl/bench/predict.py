"""What the estimator predicts for a locked stack at a given depth (public-fit factors)."""

from __future__ import annotations

from stackctl.bench.models import PredictedPoint
from stackctl.errors import StackctlError
from stackctl.models.estimate import Backend, CacheType, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile

CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


def lock_request(lock: Lockfile, depth: int) -> EstimateRequest:
    r = lock.resolved
    rt = r.runtime
    ctk = rt.cache_type_k if rt.cache_type_k in CACHE_TYPES else "f16"
    ctv = rt.cache_type_v if rt.cache_type_v in CACHE_TYPES else "f16"
    return EstimateRequest(
        model=r.model.id,
        quant=r.model.quant,
        ctx=rt.context,
        depth=min(depth, max(rt.context - 1, 0)),
        parallel=rt.parallel,
        ubatch=rt.ubatch or 512,
        threads=rt.threads,
        backend=_backend(r.engine.backend),
        cache_type_k=_cache(ctk),
        cache_type_v=_cache(ctv),
        flash_attn=rt.flash_attn != "off",
        n_cpu_moe=r.placement.n_cpu_moe,
    )


def _backend(name: str) -> Backend:
    for b in ("cuda", "rocm", "vulkan", "metal", "cpu"):
        if b == name:
            return b
    return "cpu"


def _cache(name: str) -> CacheType:
    for c in CACHE_TYPES:
        if c == name:
            return c
    return "f16"


def predict_point(lock: Lockfile, hardware: HardwareProfile, depth: int) -> PredictedPoint:
    """The estimator's figures, or nothing when it cannot say (a model it has no shape for)."""
    from stackctl.estimate import estimate

    try:
        speed = estimate(lock_request(lock, depth), hardware).speed
    except StackctlError:
        return PredictedPoint()
    return PredictedPoint(tg_tps=speed.tg_tps or None, pp_tps=speed.pp_tps or None)
