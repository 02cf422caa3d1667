"""The sweep's tuning file beside the lock, read as a hashed lock input and applied to flags.

`lockfiles/<stack>.<profile>.tuning.yaml`: the lock records its sha256 among its inputs, so a
new sweep makes `lock --check` say the lock is stale, and re-locking takes the new flags. A
winning backend is no flag: the stack is resolved again on it (its build, -ngl, quirks), for
the model the sweep measured, and the winning flags go on top.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from stackctl.bench.models import Tuning, TuningFlags
from stackctl.errors import InputError, ResolutionError
from stackctl.fsio import write_text_atomic
from stackctl.models.lock import InputRef
from stackctl.models.resolved import ResolvedStack
from stackctl.quoting import to_yaml
from stackctl.yamlio import read_yaml, validate_yaml

# llama-server spellings from tests/data/engines/llama-server-b11434.help.txt
SERVER_FLAGS = {
    "threads": "--threads",
    "ubatch": "--ubatch-size",
    "type_k": "--cache-type-k",
    "type_v": "--cache-type-v",
    "n_cpu_moe": "--n-cpu-moe",
    "load_mode": "--load-mode",
    "spec_n_max": "--spec-draft-n-max",
}

# resolve the stack again on (model, quant, backend)
ResolveOn = Callable[[str, str, str], ResolvedStack]


def tuning_path(stack: str, profile: str, lock_dir: Path = Path("lockfiles")) -> Path:
    return lock_dir / f"{stack}.{profile}.tuning.yaml"


def tuning_text(tuning: Tuning) -> str:
    header = "# Written by `stackctl bench --sweep`; the lock hashes this file.\n"
    return header + to_yaml(tuning.model_dump(mode="json"))


def write_tuning(tuning: Tuning, path: Path) -> None:
    write_text_atomic(path, tuning_text(tuning))


def read_tuning(path: Path) -> Tuning:
    data = read_yaml(path, error=InputError)
    return validate_yaml(Tuning, data, path, error=InputError)


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    """`flag value` set in an argument list: replaced where present, else appended."""
    if flag in args:
        i = args.index(flag)
        return [*args[: i + 1], value, *args[i + 2 :]]
    return [*args, flag, value]


def _applicable(resolved: ResolvedStack, flags: TuningFlags) -> tuple[dict[str, object], list[str]]:
    """The winner's flags this resolved stack takes, and why any other is left out."""
    wanted = flags.model_dump(exclude_none=True)
    left_out: list[str] = []
    backend = wanted.pop("backend", None)
    if backend is not None and backend != resolved.engine.backend:
        left_out.append(f"backend {backend} not applied")
    if "spec_n_max" in wanted and resolved.speculative.kind == "none":
        del wanted["spec_n_max"]
        left_out.append("n_max not applied: the stack decodes without speculation")
    return wanted, left_out


def apply_tuning(resolved: ResolvedStack, tuning: Tuning, source: str) -> ResolvedStack:
    """The resolved stack with the sweep's winning flags (only those the sweep set)."""
    flags: TuningFlags = tuning.winner
    set_flags, left_out = _applicable(resolved, flags)
    if not set_flags and flags.backend is None:
        return resolved
    rt = resolved.runtime
    args = list(rt.server_args)
    for name, value in set_flags.items():
        args = with_flag(args, SERVER_FLAGS[name], str(value))
    runtime = rt.model_copy(
        update={
            "server_args": args,
            "threads": flags.threads if flags.threads is not None else rt.threads,
            "ubatch": flags.ubatch if flags.ubatch is not None else rt.ubatch,
            "cache_type_k": flags.type_k or rt.cache_type_k,
            "cache_type_v": flags.type_v or flags.type_k or rt.cache_type_v,
            "load_mode": flags.load_mode or rt.load_mode,
        }
    )
    placement = resolved.placement
    if flags.n_cpu_moe is not None:
        placement = placement.model_copy(update={"n_cpu_moe": flags.n_cpu_moe})
    speculative = resolved.speculative
    if "spec_n_max" in set_flags:
        speculative = speculative.model_copy(update={"n_max": flags.spec_n_max})
    if flags.backend is not None and flags.backend == resolved.engine.backend:
        set_flags = {"backend": flags.backend, **set_flags}
    what = ", ".join([*(f"{k} {v}" for k, v in set_flags.items()), *left_out])
    gain = f", {tuning.gain:+.0%} over llama.cpp defaults" if tuning.gain is not None else ""
    reason = (
        f"tuned by a sweep on {tuning.measured_on[:10]} ({source}): {what}; "
        f"{tuning.objective} at depth {tuning.depth} measured {tuning.winner_tps:.1f} tok/s{gain}"
    )
    return resolved.model_copy(
        update={
            "runtime": runtime,
            "placement": placement,
            "speculative": speculative,
            "reasons": [*resolved.reasons, reason],
        }
    )


def on_tuned_backend(
    resolved: ResolvedStack, tuning: Tuning, resolve_on: ResolveOn
) -> ResolvedStack:
    """The stack resolved again on the sweep's backend, when the sweep measured this model.

    A stack that now resolves another model (a new catalog, an edited stack) keeps its own
    backend: the sweep measured nothing about the new one."""
    backend = tuning.winner.backend
    if backend is None or backend == resolved.engine.backend:
        return resolved
    measured = (tuning.model, tuning.quant)
    if measured != (resolved.model.id, resolved.model.quant):
        return resolved
    try:
        other = resolve_on(resolved.model.id, resolved.model.quant, backend)
    except ResolutionError:
        return resolved  # apply_tuning says the backend was not applied
    # the model line stays the plan's own: the sweep moved the backend, not the model choice
    return other.model_copy(update={"reasons": [resolved.reasons[0], *other.reasons[1:]]})


def tuning_ref(stack: str, profile: str) -> InputRef | None:
    """The tuning file as a lock input, when a sweep has written one."""
    path = tuning_path(stack, profile)
    if not path.is_file():
        return None
    return InputRef(
        name="tuning", path=path.as_posix(), sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )


def tuned(
    resolved: ResolvedStack, stack: str, profile: str, resolve_on: ResolveOn | None = None
) -> ResolvedStack:
    path = tuning_path(stack, profile)
    if not path.is_file():
        return resolved
    tuning = read_tuning(path)
    if resolve_on is not None:
        resolved = on_tuned_backend(resolved, tuning, resolve_on)
    return apply_tuning(resolved, tuning, path.as_posix())


def tuning_change(old: InputRef | None, new: InputRef | None) -> str | None:
    """What `lock --check` says when the sweep's file appeared, changed or went away."""
    if (old.sha256 if old else None) == (new.sha256 if new else None):
        return None
    if old is None:
        return f"tuning {new.path if new else ''} was written by a sweep since the lock was made"
    if new is None:
        return f"tuning {old.path} was removed since the lock was made"
    return f"tuning {new.path} changed since the lock was made (a new sweep)"
