"""Context as a dimension of the candidate: for long-context workloads, the largest context
the chosen stack can hold without giving anything else up.

The stack's `context` is a minimum. A workload that prefers long context (catalog/quality.yaml
`prefer_long_context`) tries doubling it, up to the model's native limit, and keeps a step
only when (1) it still fits, (2) the placement is unchanged (more context never pushes layers
or experts off the GPU) and (3) decode at half that depth (a conversation midway through its
context) still meets the speed floor. Each step's KV type follows the runtime policy (q8_0
above its threshold). Every step tried is reported, and why the search stopped.
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


def context_steps(minimum: int, native: int) -> list[int]:
    """Doublings of the minimum, then the native limit itself, all per slot."""
    steps = []
    ctx = minimum * 2
    while ctx < native:
        steps.append(ctx)
        ctx *= 2
    if native > minimum:
        steps.append(native)
    return steps


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
    """The chosen candidate at the largest context that costs nothing else (see module doc)."""
    if not policy.quality.workloads[spec.workload].prefer_long_context:
        chosen.basis.append(
            f"context: the stack's {spec.context} per user ({spec.workload} does not prefer "
            "long context: catalog/quality.yaml)"
        )
        return chosen
    best, tried = chosen, [str(chosen.ctx)]
    stop = f"the model's native limit is {chosen.entry.ctx_native}"
    for ctx in context_steps(chosen.ctx, chosen.entry.ctx_native):
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
    best.basis.append(
        f"context: tried {', '.join(tried)} per user (long-context workload); chose {best.ctx}; "
        f"stopped at {stop}"
    )
    return best
