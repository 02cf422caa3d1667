"""Stage 4, evaluate in score order: placement, then speculative decoding, for each candidate
until the best that fit and meet the speed floor are known; then the final score (quality plus
speed). Context growth for the chosen one is in context.py, driven from plan.py."""

from __future__ import annotations

from stackctl.models.hardware import HardwareProfile
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import GIB, Candidate
from stackctl.resolve.mlx import MLX, place_mlx
from stackctl.resolve.place import place_ds4, place_llamacpp
from stackctl.resolve.prescore import score_order
from stackctl.resolve.score import with_speed
from stackctl.resolve.session import Loaded
from stackctl.resolve.speculative import try_speculative


def evaluate(c: Candidate, spec: StackSpec, hardware: HardwareProfile, loaded: Loaded) -> None:
    if c.engine.name == "ds4":
        place_ds4(c, hardware, loaded.policy, spec.users)
    elif c.engine.name == MLX:
        place_mlx(loaded.session, c, hardware, spec.users,
                  {e.name: e for e in loaded.catalog.engines})  # fmt: skip
    else:
        place_llamacpp(loaded.session, c, hardware, spec.users)
        check_file_size(c)
        try_speculative(c, hardware, spec.users, session=loaded.session,
                        policy=loaded.policy, catalog=loaded.catalog)  # fmt: skip


def check_file_size(c: Candidate) -> None:
    """A file larger than its quant recipe predicts (dynamic quants upcast some tensors) must
    still fit: the excess, from the published size, has to fit in the headroom left."""
    est, size = c.estimate, c.artefact.size
    if c.reject is not None or est is None or not size or size <= est.memory.weights_bytes:
        return
    excess = size - est.memory.weights_bytes
    headroom = sum(max((d.budget_bytes or 0) - d.total_bytes, 0) for d in est.memory.devices)
    line = (f"weights: the file is {size / GIB:.1f} GiB (published size), "
            f"{excess / GIB:.1f} GiB more than the {c.artefact.quant} recipe estimate")  # fmt: skip
    if headroom < excess:
        c.reject = f"does not fit: {line}; {headroom / GIB:.1f} GiB of headroom left"
        return
    c.basis.append(f"{line}; within the {headroom / GIB:.1f} GiB of headroom")


def meets_floor(c: Candidate, spec: StackSpec) -> bool:
    return spec.pin is not None or c.tg >= spec.min_tg_tps


def walk(
    spec: StackSpec, hardware: HardwareProfile, loaded: Loaded, cands: list[Candidate], top: int
) -> list[Candidate]:
    """Evaluate in score order until the best `top` + 1 that fit and meet the floor are known.

    Speed can add up to the workload's `speed_points_cap` once a candidate is evaluated, so
    the walk goes on while an unevaluated candidate could still overtake the last kept one."""
    accepted: list[Candidate] = []
    w = loaded.policy.quality.workloads[spec.workload]
    for c in cands:
        if c.reject is not None:
            continue
        if len(accepted) > top and c.rank + w.speed_points_cap <= accepted[top].rank:
            break
        evaluate(c, spec, hardware, loaded)
        if c.reject is None and meets_floor(c, spec):
            c.score = with_speed(c.score, c.tg, spec.min_tg_tps, spec.workload, loaded.policy)
            accepted.append(c)
            accepted.sort(key=score_order)
    return accepted


def relax_floor(spec: StackSpec, cands: list[Candidate]) -> tuple[Candidate | None, str]:
    fitting = [c for c in cands if c.evaluated and c.reject is None]
    if not fitting:
        return None, ""
    usable = [c for c in fitting if c.tg >= spec.min_tg_tps / 2]
    pick = max(usable, key=lambda c: c.rank) if usable else max(fitting, key=lambda c: c.tg)
    best = max(fitting, key=lambda c: c.rank)
    why = (
        f"speed floor relaxed: no candidate decodes {spec.min_tg_tps:g} tok/s on this box; "
        f"chose {pick.label} at ~{pick.tg:.1f} tok/s (you give up "
        f"{spec.min_tg_tps - pick.tg:.1f} tok/s of the floor"
    )
    if best is not pick:
        why += f"; the best-scored that fits, {best.label}, decodes only ~{best.tg:.1f} tok/s"
    return pick, why + ")"
