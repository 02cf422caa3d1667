"""Context as a dimension of the candidate: for long-context workloads, the largest context
the chosen stack can hold without giving anything else up.

The stack's `context` is a minimum. A workload with a `min_context` (catalog/quality.yaml: code
32K, agentic 64K) grows to it where it fits; one that prefers long context (`prefer_long_context`)
goes on doubling up to the model's native limit. A step is kept only when (1) it still fits,
(2) the placement is unchanged (more context never pushes layers or experts off the GPU: "where
it fits") and (3) decode at half that depth (a conversation midway through its context) still
meets the speed floor. Each step's KV type follows the runtime policy (q8_0 above its threshold).
Every step tried is reported, and why the search stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from stackctl.models.policy import Policy
from stackctl.models.resolved import Placement
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import Candidate

Evaluate = Callable[[Candidate], None]
DecodeAt = Callable[[Candidate, int], float | None]  # tok/s at a depth, None if not modelled


def kv_type(ctx: int, policy: Policy) -> str:
    return policy.runtime.kv_quant_type if ctx > policy.runtime.kv_quantize_above_ctx else "f16"


def context_steps(minimum: int, native: int, target: int = 0) -> list[int]:
    """Doublings of the minimum, the workload's `target` among them, then the native limit
    itself, all per slot."""
    steps = []
    ctx = minimum * 2
    while ctx < native:
        if minimum < target < ctx and target not in steps:
            steps.append(target)
        steps.append(ctx)
        ctx *= 2
    if minimum < target < native and target not in steps:
        steps.append(target)
    if native > minimum:
        steps.append(native)
    return sorted(set(steps))


def _same_place(a: Placement, b: Placement) -> bool:
    return (a.ngl, a.n_cpu_moe) == (b.ngl, b.n_cpu_moe)


def _stop_reason(
    base: Candidate, trial: Candidate, spec: StackSpec, decode: DecodeAt
) -> str | None:
    if trial.reject is not None:
        return trial.reject
    if not _same_place(trial.placement, base.placement):
        return "would move weights off the GPU"
    tg = decode(trial, trial.ctx // 2)
    if tg is not None and tg < spec.min_tg_tps:
        return (
            f"decode at depth {trial.ctx // 2} ~{tg:.1f} tok/s, below the {spec.min_tg_tps:g} floor"
        )
    return None


def grow_context(
    chosen: Candidate,
    spec: StackSpec,
    policy: Policy,
    evaluate: Evaluate,
    decode: DecodeAt,
) -> Candidate:
    """The chosen candidate at the workload's context (see module doc)."""
    w = policy.quality.workloads[spec.workload]
    minimum = max(w.min_context or 0, chosen.ctx)
    if not w.prefer_long_context and minimum <= chosen.ctx:
        chosen.basis.append(
            f"context: the stack's {spec.context} per user ({spec.workload} does not prefer "
            "long context: catalog/quality.yaml)"
        )
        return chosen
    best, tried = chosen, [str(chosen.ctx)]
    limit = (
        chosen.entry.ctx_native if w.prefer_long_context else min(minimum, chosen.entry.ctx_native)
    )
    stop = f"the model's native limit is {chosen.entry.ctx_native}"
    if limit < chosen.entry.ctx_native:
        stop = f"the {spec.workload} minimum of {minimum} (catalog/quality.yaml min_context)"
    for ctx in context_steps(chosen.ctx, limit, minimum):
        # a fresh evaluation: placement and speculative decoding are decided again at this ctx
        trial = replace(chosen, ctx=ctx, kv=kv_type(ctx, policy), reject=None, estimate=None,
                        evaluated=False, basis=[], placement=Placement(ngl=0),
                        speculative=None)  # fmt: skip
        evaluate(trial)
        why = _stop_reason(chosen, trial, spec, decode)
        if why is not None:
            stop = f"{ctx}: {why}"
            break
        best = trial
        tried.append(str(ctx))
    kind = (
        "long-context workload" if w.prefer_long_context else f"{spec.workload} minimum {minimum}"
    )
    best.basis.append(
        f"context: tried {', '.join(tried)} per user ({kind}); chose {best.ctx}; stopped at {stop}"
    )
    return best
