"""Resolve intent + hardware into one concrete stack, explaining each choice.

The stages run one way, each in its own module:
enumerate (model file x engine x backend) -> screen (hard constraints) -> prescore (quality for
the workload and backend preference, score order) -> evaluate in score order (placement,
speculative decoding; the final score adds speed) -> context for the chosen -> build (the
ResolvedStack). plan.py drives them; nothing below it imports upward.
"""

from stackctl.resolve.plan import (
    DEFAULT_TOP,
    Resolution,
    Resolver,
    candidates_in_score_order,
    make_resolver,
    resolve_plan,
    resolve_stack,
)

__all__ = [
    "DEFAULT_TOP",
    "Resolution",
    "Resolver",
    "candidates_in_score_order",
    "make_resolver",
    "resolve_plan",
    "resolve_stack",
]
