"""What the estimator predicts for a locked stack at a given depth (public-fit factors)."""

from __future__ import annotations

from typing import cast, get_args

from stackctl.bench.models import PredictedPoint
from stackctl.errors import StackctlError
from stackctl.models.estimate import Backend, CacheType, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile

PP_CHUNK = 512  # the estimator's prefill chunk (estimate/speed.py TTFT_PROMPT)
BACKENDS = get_args(Backend)  # the estimator's backends
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


def lock_request(lock: Lockfile, depth: int) -> EstimateRequest:
    r = lock.resolved
    rt = r.runtime
    return EstimateRequest(
        model=r.model.id,
        quant=r.model.quant,
        ctx=rt.context,
        depth=min(depth, max(rt.context - 1, 0)),
        parallel=rt.parallel,
        ubatch=rt.ubatch or 512,
        threads=rt.threads,
        repack=rt.repack is not False,
        backend=cast(Backend, r.engine.backend if r.engine.backend in BACKENDS else "cpu"),
        cache_type_k=_cache(rt.cache_type_k),
        cache_type_v=_cache(rt.cache_type_v),
        flash_attn=rt.flash_attn != "off",
        n_cpu_moe=r.placement.n_cpu_moe,
    )


def _cache(name: str) -> CacheType:
    return cast(CacheType, name if name in CACHE_TYPES else "f16")


def predict_point(
    lock: Lockfile, hardware: HardwareProfile, depth: int, pp_depth: int | None = None
) -> PredictedPoint:
    """The estimator's figures, or nothing when it cannot say (a model it has no shape for)."""
    from stackctl.estimate import estimate

    # The bench prefills `depth` tokens from an empty cache: on average a token attends to
    # depth / 2, as the estimator's 512-token chunk does at depth (depth / 2 - 256).
    try:
        tg = estimate(lock_request(lock, depth), hardware).speed.tg_tps
        if pp_depth is None:
            pp_depth = max(depth // 2 - PP_CHUNK // 2, 0)
        pp = estimate(lock_request(lock, pp_depth), hardware).speed.pp_tps
    except StackctlError:
        return PredictedPoint()
    return PredictedPoint(tg_tps=tg or None, pp_tps=pp or None)
