"""`bench --sweep`: a small, bounded search over the flags that matter on this box.

Coordinate descent over llama-bench runs, so each stage is one process: threads x ubatch
first, then the KV cache type at the best of those, `--n-cpu-moe` around the fit boundary for
MoE offload, the load mode, the other backends of the same engine version built on this box,
and last, for a stack that speculates, the draft length n_max (on llama-server: spec_sweep.py).
llama.cpp's defaults (no flags at all) run in the same sweep, so the gain is measured, not
assumed. The objective is the stack's: decode at the target depth, or prefill
(time to first token). After the grid, a stage's challenger replaces the best so far only by
more than the run-to-run spread: a flag that wins within noise would change the deployment
for nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from stackctl.bench.models import SweepCandidate, Tuning, TuningFlags
from stackctl.errors import StackctlError

TTFT_PROMPT = 512
# llama-bench b11434 `-lm, --load-mode <auto|none|mmap|mlock|mmap+mlock|dio>` (default auto:
# "mmap, unless a device does not support it"); the sweep's incumbent runs without the flag.
LOAD_MODES = ("none", "mlock", "dio")


class SweepError(StackctlError):
    code = "sweep-failed"


@dataclass(frozen=True)
class SweepSpace:
    threads: Sequence[int]
    ubatch: Sequence[int]
    kv_types: Sequence[str]
    n_cpu_moe: Sequence[int] = ()
    load_modes: Sequence[str] = ()
    backends: Sequence[str] = ()  # other built backends, beside the lock's


@dataclass(frozen=True)
class BenchTarget:
    """One build's llama-bench, with what every run on it keeps (-fa, -ngl, --repack...)."""

    llama_bench: str
    extra: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    load_mode: str | None = None  # fixed by a quirk: the sweep never tries another


@dataclass(frozen=True)
class SweepPlan:
    targets: Mapping[str, BenchTarget]  # by backend; the lock's is `backend`
    backend: str
    model_path: str
    objective: str  # tg | ttft
    depth: int
    n_gen: int = 32
    reps: int = 3
    timeout_s: float = 900.0


def thread_choices(cores: int | None, logical: int | None) -> list[int]:
    values = {c for c in (cores, logical, (cores or 0) // 2) if c}
    return sorted(values) or [1]


def flag_args(flags: TuningFlags) -> list[str]:
    """The candidate's own flags in llama-bench b11434's spelling (its --help)."""
    args: list[str] = []
    if flags.threads is not None:
        args += ["-t", str(flags.threads)]
    if flags.ubatch is not None:
        args += ["-ub", str(flags.ubatch)]
    if flags.type_k is not None:
        args += ["-ctk", flags.type_k, "-ctv", flags.type_v or flags.type_k]
    if flags.n_cpu_moe is not None:
        args += ["-ncmoe", str(flags.n_cpu_moe)]
    if flags.load_mode is not None:
        args += ["-lm", flags.load_mode]
    return args


def describe(flags: TuningFlags) -> str:
    parts = [f"{k}={v}" for k, v in flags.model_dump(exclude_none=True).items()]
    return " ".join(parts) or "llama.cpp defaults"


def _test_args(plan: SweepPlan) -> list[str]:
    if plan.objective == "ttft":
        return ["-p", str(TTFT_PROMPT), "-n", "0", "-d", str(plan.depth)]
    return ["-p", "0", "-n", str(plan.n_gen), "-d", str(plan.depth)]


def target_of(plan: SweepPlan, flags: TuningFlags) -> BenchTarget:
    return plan.targets[flags.backend or plan.backend]


def llama_bench_argv(plan: SweepPlan, flags: TuningFlags) -> list[str]:
    target = target_of(plan, flags)
    # llama-bench runs every value of a repeated flag: a quirk's load mode stays the only one
    fixed = ["-lm", target.load_mode] if target.load_mode else []
    own = flags.model_copy(update={"load_mode": None}) if target.load_mode else flags
    return [
        target.llama_bench,
        "-m",
        plan.model_path,
        *_test_args(plan),
        *target.extra,
        *fixed,
        *flag_args(own),
        "-r",
        str(plan.reps),
        "-o",
        "json",
    ]


def run_llama_bench(
    argv: list[str], timeout_s: float, env: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env} if env else None,
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

_BACKEND_NAMES = {"cpu": "cpu", "cuda": "cuda", "rocm": "rocm", "vulkan": "vulkan", "metal": "mtl"}


def ran_on(record: Mapping[str, object], backend: str) -> bool:
    """llama-bench's `backends` names the build's backends ("Vulkan", "CPU"...): a GPU build
    that found no device of its own would measure the CPU under the GPU's name."""
    names = str(record.get("backends") or "").lower()
    return backend == "cpu" or not names or _BACKEND_NAMES.get(backend, backend) in names


def llama_bench_measure(plan: SweepPlan) -> Measure:
    def measure(flags: TuningFlags) -> SweepCandidate:
        target = target_of(plan, flags)
        if target.load_mode:  # the quirk's load mode ran, whatever the stage asked for
            flags = flags.model_copy(update={"load_mode": None})
        try:
            records = run_llama_bench(llama_bench_argv(plan, flags), plan.timeout_s, target.env)
        except SweepError as exc:
            return SweepCandidate(flags=flags, tps=None, error=exc.message)
        if not records:
            return SweepCandidate(flags=flags, tps=None, error="llama-bench printed no rows")
        rec = records[0]
        backend = flags.backend or plan.backend
        if not ran_on(rec, backend):
            why = f"llama-bench ran on {rec.get('backends')}, not {backend}"
            return SweepCandidate(flags=flags, tps=None, error=why)
        mode = target.load_mode or flags.load_mode
        if mode and rec.get("load_mode") not in (None, mode):
            why = f"llama-bench loaded with {rec.get('load_mode')}, not {mode}"
            return SweepCandidate(flags=flags, tps=None, error=why)
        return SweepCandidate(
            flags=flags,
            tps=round(float(str(rec["avg_ts"])), 2),
            tps_std=round(float(str(rec.get("stddev_ts") or 0)), 2),
        )

    return measure


def _best(candidates: list[SweepCandidate]) -> SweepCandidate | None:
    scored = [c for c in candidates if c.tps]
    return max(scored, key=lambda c: c.tps or 0.0) if scored else None


def beats(challenger: SweepCandidate, incumbent: SweepCandidate) -> bool:
    """Faster by more than the larger of the two spreads (llama-bench's stddev)."""
    if not challenger.tps or not incumbent.tps:
        return bool(challenger.tps)
    margin = max(challenger.tps_std or 0.0, incumbent.tps_std or 0.0)
    return challenger.tps > incumbent.tps + margin


def _keep_or_replace(best: SweepCandidate, stage: list[SweepCandidate]) -> SweepCandidate:
    top = _best(stage)
    return top if top is not None and beats(top, best) else best


def grid_flags(space: SweepSpace) -> list[TuningFlags]:
    return [TuningFlags(threads=t, ubatch=u) for t in space.threads for u in space.ubatch]


def stage_flags(best: TuningFlags, space: SweepSpace) -> list[list[TuningFlags]]:
    """The stages after the grid, each around the best so far (computed lazily by `sweep`:
    this gives them for one incumbent, which is what the plan line and the tests show)."""
    return [
        [best.model_copy(update={"type_k": t, "type_v": t}) for t in space.kv_types[1:]],
        [best.model_copy(update={"n_cpu_moe": n}) for n in space.n_cpu_moe],
        [best.model_copy(update={"load_mode": m}) for m in space.load_modes],
        [best.model_copy(update={"backend": b}) for b in space.backends],
    ]


@dataclass(frozen=True)
class SpecStage:
    """n_max values for the last stage, measured on llama-server (its own incumbent: the
    lock's n_max, `current`), on the lock's own backend only."""

    current: int
    choices: Sequence[int]
    backend: str
    measure: Measure


def sweep_size(space: SweepSpace, spec: SpecStage | None = None) -> int:
    """Candidates the sweep runs at most (llama.cpp's defaults included)."""
    stages = sum(len(s) for s in stage_flags(TuningFlags(), space))
    return 1 + len(grid_flags(space)) + stages + (len(spec.choices) if spec else 0)


def spec_stage(
    best: SweepCandidate, spec: SpecStage, run: Callable[[TuningFlags], SweepCandidate]
) -> SweepCandidate:
    """The best so far, with the n_max that beats the lock's own on llama-server (if any). Its
    figure stays llama-bench's: server and llama-bench rates are not compared."""
    if (best.flags.backend or spec.backend) != spec.backend:
        return best  # another build won: the draft runs were not measured on it
    at = {n: best.flags.model_copy(update={"spec_n_max": n}) for n in spec.choices}
    incumbent = run(at[spec.current])
    challengers = [run(f) for n, f in at.items() if n != spec.current]
    top = _best(challengers)
    if top is None or not beats(top, incumbent):
        return best
    return best.model_copy(update={"flags": top.flags})


def sweep(
    space: SweepSpace,
    measure: Measure,
    progress: Callable[[int, int, str], None] = lambda _i, _n, _s: None,
    spec: SpecStage | None = None,
) -> tuple[list[SweepCandidate], SweepCandidate | None, SweepCandidate]:
    """(every candidate, the winner, llama.cpp's defaults), measured in one sweep."""
    total = sweep_size(space, spec)
    done: list[SweepCandidate] = []

    def run(flags: TuningFlags, measure: Measure = measure) -> SweepCandidate:
        progress(len(done) + 1, total, describe(flags))
        result = measure(flags)
        done.append(result)
        return result

    default = run(TuningFlags()).model_copy(update={"is_default": True})
    done[0] = default
    best = _best([run(f) for f in grid_flags(space)])
    for stage in range(4):
        if best is None:
            break
        flags = stage_flags(best.flags, space)[stage]
        best = _keep_or_replace(best, [run(f) for f in flags])
    if best is not None and spec is not None:
        on_server = spec.measure
        best = spec_stage(best, spec, lambda f: run(f, on_server))
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
    model: str | None = None,
    quant: str | None = None,
) -> Tuning:
    gain = winner.tps / default.tps - 1 if winner.tps and default.tps else None
    return Tuning(
        stack=stack,
        hardware=hardware,
        objective="ttft" if plan.objective == "ttft" else "tg",
        depth=plan.depth,
        engine_build=build,
        model=model,
        quant=quant,
        winner=winner.flags,
        winner_tps=winner.tps or 0.0,
        default_tps=default.tps,
        gain=round(gain, 4) if gain is not None else None,
        measured_on=date,
        candidates=candidates,
    )
