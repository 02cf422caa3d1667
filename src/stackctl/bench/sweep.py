"""`bench --sweep`: a small, bounded search over the flags that matter on this box.

Coordinate descent over llama-bench runs, so each stage is one process: threads x ubatch
first, then the KV cache type at the best of those, then `--n-cpu-moe` around the fit
boundary for MoE offload. llama.cpp's defaults (no flags at all) run in the same sweep, so
the gain is measured, not assumed. The objective is the stack's: decode at the target depth,
or prefill (time to first token).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stackctl.bench.models import SweepCandidate, Tuning, TuningFlags
from stackctl.errors import StackctlError

TTFT_PROMPT = 512


class SweepError(StackctlError):
    code = "sweep-failed"


@dataclass(frozen=True)
class SweepSpace:
    threads: Sequence[int]
    ubatch: Sequence[int]
    kv_types: Sequence[str]
    n_cpu_moe: Sequence[int] = ()


@dataclass(frozen=True)
class SweepPlan:
    llama_bench: str
    model_path: str
    objective: str  # tg | ttft
    depth: int
    n_gen: int = 32
    reps: int = 3
    extra: Sequence[str] = ()  # -ngl and the like, from the lock
    timeout_s: float = 900.0


def thread_choices(cores: int | None, logical: int | None) -> list[int]:
    values = {c for c in (cores, logical, (cores or 0) // 2) if c}
    return sorted(values) or [1]


def _flag_args(flags: TuningFlags) -> list[str]:
    args: list[str] = []
    if flags.threads is not None:
        args += ["-t", str(flags.threads)]
    if flags.ubatch is not None:
        args += ["-ub", str(flags.ubatch)]
    if flags.type_k is not None:
        args += ["-ctk", flags.type_k, "-ctv", flags.type_v or flags.type_k]
    if flags.n_cpu_moe is not None:
        args += ["-ncmoe", str(flags.n_cpu_moe)]
    return args


def _test_args(plan: SweepPlan) -> list[str]:
    if plan.objective == "ttft":
        return ["-p", str(TTFT_PROMPT), "-n", "0", "-d", str(plan.depth)]
    return ["-p", "0", "-n", str(plan.n_gen), "-d", str(plan.depth)]


def llama_bench_argv(plan: SweepPlan, flags: TuningFlags) -> list[str]:
    return [
        plan.llama_bench,
        "-m",
        plan.model_path,
        *_test_args(plan),
        *plan.extra,
        *_flag_args(flags),
        "-r",
        str(plan.reps),
        "-o",
        "json",
    ]


def run_llama_bench(argv: list[str], timeout_s: float) -> list[dict[str, object]]:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SweepError(f"llama-bench did not run: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise SweepError(f"llama-bench exited with {done.returncode}", details=tail)
    try:
        records = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise SweepError(f"llama-bench printed no JSON: {exc}") from None
    return [r for r in records if isinstance(r, dict)]


Measure = Callable[[TuningFlags], SweepCandidate]


def llama_bench_measure(plan: SweepPlan) -> Measure:
    def measure(flags: TuningFlags) -> SweepCandidate:
        try:
            records = run_llama_bench(llama_bench_argv(plan, flags), plan.timeout_s)
        except SweepError as exc:
            return SweepCandidate(flags=flags, tps=None, error=exc.message)
        if not records:
            return SweepCandidate(flags=flags, tps=None, error="llama-bench printed no rows")
        rec = records[0]
        return SweepCandidate(
            flags=flags,
            tps=round(float(str(rec["avg_ts"])), 2),
            tps_std=round(float(str(rec.get("stddev_ts") or 0)), 2),
        )

    return measure


def _best(candidates: list[SweepCandidate]) -> SweepCandidate | None:
    scored = [c for c in candidates if c.tps]
    return max(scored, key=lambda c: c.tps or 0.0) if scored else None


def sweep(
    space: SweepSpace,
    measure: Measure,
    progress: Callable[[int, int, str], None] = lambda _i, _n, _s: None,
) -> tuple[list[SweepCandidate], SweepCandidate | None, SweepCandidate]:
    """(every candidate, the winner, llama.cpp's defaults), measured in one sweep."""
    grid = [TuningFlags(threads=t, ubatch=u) for t in space.threads for u in space.ubatch]
    total = 1 + len(grid) + max(len(space.kv_types) - 1, 0) + len(space.n_cpu_moe)
    done: list[SweepCandidate] = []

    def run(flags: TuningFlags) -> SweepCandidate:
        progress(len(done) + 1, total, " ".join(_flag_args(flags)) or "llama.cpp defaults")
        result = measure(flags)
        done.append(result)
        return result

    default = run(TuningFlags()).model_copy(update={"is_default": True})
    done[0] = default
    stage = [run(f) for f in grid]
    best = _best(stage)
    if best is not None and len(space.kv_types) > 1:
        kv = [
            run(best.flags.model_copy(update={"type_k": t, "type_v": t}))
            for t in space.kv_types[1:]
        ]
        best = _best([best, *kv])
    if best is not None and space.n_cpu_moe:
        moe = [run(best.flags.model_copy(update={"n_cpu_moe": n})) for n in space.n_cpu_moe]
        best = _best([best, *moe])
    return done, best, default


def tuning_from(
    *,
    stack: str,
    hardware: str,
    plan: SweepPlan,
    build: str | None,
    date: str,
    candidates: list[SweepCandidate],
    winner: SweepCandidate,
    default: SweepCandidate,
) -> Tuning:
    gain = winner.tps / default.tps - 1 if winner.tps and default.tps else None
    return Tuning(
        stack=stack,
        hardware=hardware,
        objective="ttft" if plan.objective == "ttft" else "tg",
        depth=plan.depth,
        engine_build=build,
        winner=winner.flags,
        winner_tps=winner.tps or 0.0,
        default_tps=default.tps,
        gain=round(gain, 4) if gain is not None else None,
        measured_on=date,
        candidates=candidates,
    )
