"""`stackctl bench --sweep`: options, the search over llama-bench runs, the tuning file."""

from __future__ import annotations

import argparse
import os
import resource
import shlex
from typing import Any

from pydantic import ValidationError

from stackctl import layout
from stackctl.bench.builds import bin_dir, other_builds
from stackctl.bench.models import SweepCandidate
from stackctl.bench.rows import now_utc
from stackctl.bench.spec_sweep import ServerPlan, measure_on_server, n_max_choices
from stackctl.bench.store import add_sweep, open_store
from stackctl.bench.sweep import (
    LOAD_MODES,
    BenchTarget,
    SpecStage,
    SweepPlan,
    SweepSpace,
    describe,
    llama_bench_measure,
    sweep,
    sweep_size,
    thread_choices,
    tuning_from,
)
from stackctl.bench.tuning import tuning_path, write_tuning
from stackctl.cli.bench_args import lock_from, progress
from stackctl.cli.output import info, print_json
from stackctl.cli.pipeline import inputs_for_lock
from stackctl.errors import EXIT_FAILED, InputError, ResolutionError
from stackctl.layout import host_layout
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.models.resolved import ResolvedStack
from stackctl.pipeline import Inputs, resolve_on_backend

UBATCH = [128, 256, 512]
KV_TYPES = ["f16", "q8_0"]


def _list(kind: type) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None

    return parse


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sweep", "bench --sweep: the bounded flag search")
    group.add_argument(
        "--objective",
        choices=["tg", "ttft"],
        default="tg",
        help="decode at the target depth (tg) or time to first token",
    )
    group.add_argument(
        "--depth",
        type=int,
        default=None,
        help="target depth (default: half the context, at most 4096)",
    )
    group.add_argument("--threads", type=_list(int), help="thread counts to try")
    group.add_argument("--ubatch", type=_list(int), help=f"ubatch sizes (default {UBATCH})")
    group.add_argument("--kv-types", type=_list(str), help=f"KV cache types ({KV_TYPES})")
    group.add_argument(
        "--load-modes",
        type=_list(str),
        help=f"load modes to try beside auto (default {list(LOAD_MODES)}; mlock where allowed)",
    )
    group.add_argument(
        "--n-max",
        type=_list(int),
        help="speculative draft lengths to try on llama-server (default: half, the lock's, "
        "+2 and double); stacks that speculate only",
    )
    group.add_argument("--bench-args", help="llama-bench flags every candidate keeps")
    group.add_argument("--reps", type=int, default=3, help="llama-bench repetitions per point")


def _space(
    args: argparse.Namespace, lock: Lockfile, hw: HardwareProfile, targets: dict[str, BenchTarget]
) -> SweepSpace:
    rt = lock.resolved.runtime
    kv = args.kv_types or (KV_TYPES if rt.flash_attn != "off" else KV_TYPES[:1])
    moe = lock.resolved.placement.n_cpu_moe
    own = targets[lock.resolved.engine.backend]
    return SweepSpace(
        threads=args.threads or thread_choices(hw.cpu.cores, hw.cpu.threads),
        ubatch=args.ubatch or UBATCH,
        kv_types=kv,
        n_cpu_moe=[n for n in (moe - 2, moe - 1, moe + 1) if n >= 0] if moe else [],
        load_modes=[] if own.load_mode else _load_modes(args, lock),
        backends=[b for b in targets if b != lock.resolved.engine.backend],
    )


def _load_modes(args: argparse.Namespace, lock: Lockfile) -> list[str]:
    if args.load_modes is not None:
        return list(args.load_modes)
    size = lock.resolved.model.artefact.size or 0
    return [m for m in LOAD_MODES if m != "mlock" or can_lock(size)]


def can_lock(size: int) -> bool:
    """mlock of the whole model needs CAP_IPC_LOCK (root) or a memlock limit above its size;
    without, llama.cpp warns and runs unlocked, which would measure the plain load again."""
    if os.geteuid() == 0:
        return True
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return soft == resource.RLIM_INFINITY or soft >= size


def _extra(resolved: ResolvedStack, fixed: str | None) -> list[str]:
    """Flags the lock sets that the sweep keeps fixed, in llama-bench's spelling."""
    extra = ["-fa", resolved.runtime.flash_attn]
    if resolved.placement.ngl:
        extra += ["-ngl", str(min(resolved.placement.ngl, 999))]
    return extra + _fixed(resolved, fixed)


def fixed_bench_args(lock: Lockfile, fixed: str | None) -> list[str]:
    """What every llama-bench run keeps: the lock's --no-repack, and `--bench-args`
    (e.g. "--repack 0")."""
    return _fixed(lock.resolved, fixed)


def _fixed(resolved: ResolvedStack, fixed: str | None) -> list[str]:
    extra = ["--repack", "0"] if "--no-repack" in resolved.runtime.server_args else []
    return extra + shlex.split(fixed or "")


def quirk_load_mode(resolved: ResolvedStack) -> str | None:
    """The load mode a known quirk imposes (an APU's mmap hangs): the sweep keeps it."""
    from stackctl.policy import load_policy
    from stackctl.resources import catalog_dir

    applied = {q.id for q in resolved.quirks}
    rules = load_policy(catalog_dir()).quirks.quirks
    modes = [q.effect.server["load_mode"] for q in rules
             if q.id in applied and "load_mode" in q.effect.server]  # fmt: skip
    return modes[0] if modes else None


def _target(resolved: ResolvedStack, bin_dir: str, fixed: str | None) -> BenchTarget:
    return BenchTarget(
        llama_bench=f"{bin_dir}/llama-bench",
        extra=_extra(resolved, fixed),
        env=dict(resolved.requirements.env),
        load_mode=quirk_load_mode(resolved),
    )


def bench_targets(
    lock: Lockfile, inputs: Inputs, host: HostLayout, fixed: str | None
) -> tuple[dict[str, BenchTarget], list[str]]:
    """llama-bench of the lock's build, and of each other backend built here that this profile
    can plan (resolved again on it: its build key, -ngl and quirks); notes on those skipped."""
    r = lock.resolved
    own = bin_dir(r.engine, host) or f"{layout.engine_dir(lock, host)}/bin"
    targets = {r.engine.backend: _target(r, own, fixed)}
    notes: list[str] = []
    for backend, keys in other_builds(lock, host).items():
        where = f"{backend} build {', '.join(keys)}"
        try:
            other = resolve_on_backend(inputs, r.model.id, r.model.quant, backend)
        except (ResolutionError, ValidationError) as exc:
            why = exc.message if isinstance(exc, ResolutionError) else str(exc).splitlines()[0]
            notes.append(f"{where}: not compared: profile {r.hardware} cannot plan it ({why})")
            continue
        found = bin_dir(other.engine, host)
        if found is None:
            notes.append(
                f"{where}: not compared: this profile plans {backend} as build "
                f"{other.engine.build_key} (other flags), which is not built here"
            )
            continue
        targets[backend] = _target(other, found, fixed)
    return targets, notes


# llama-server's default draft length (b11434 --help: --spec-draft-n-max, default 3)
SERVER_N_MAX = 3


def spec_stage_of(
    args: argparse.Namespace, lock: Lockfile, host: HostLayout
) -> tuple[SpecStage | None, str | None]:
    """The n_max stage on llama-server for a stack that speculates, or why there is none."""
    r = lock.resolved
    if r.speculative.kind == "none":
        return None, None
    current = r.speculative.n_max or SERVER_N_MAX
    if args.objective != "tg":
        return (
            None,
            f"speculative n_max: not swept for ttft (drafting speeds decode only); "
            f"the lock keeps n_max {current}",
        )
    choices = sorted({current, *(n for n in args.n_max if n >= 1)}) if args.n_max else None
    server = ServerPlan(argv=layout.service_argv(lock, host), env=dict(r.requirements.env),
                        reps=args.reps)  # fmt: skip
    stage = SpecStage(current=current, choices=choices or n_max_choices(current),
                      backend=r.engine.backend,
                      measure=lambda flags: measure_on_server(server, flags))  # fmt: skip
    note = (f"speculative n_max {list(stage.choices)} on llama-server ({r.speculative.kind}; "
            f"llama-bench has no draft option), against the lock's {current}")  # fmt: skip
    return stage, note


def run_sweep(args: argparse.Namespace, lock_path: str | None) -> int:
    lock, path = lock_from(lock_path)
    inputs = lock_inputs_of(lock)
    hardware = inputs.hardware
    host = host_layout()
    context = lock.resolved.runtime.context
    depth = args.depth if args.depth is not None else min(context // 2, 4096)
    if depth >= context:
        raise InputError(f"--depth {depth} is not below the context ({context})")
    targets, notes = bench_targets(lock, inputs, host, args.bench_args)
    plan = SweepPlan(
        targets=targets,
        backend=lock.resolved.engine.backend,
        model_path=layout.model_path(lock, host),
        objective=args.objective,
        depth=depth,
        reps=args.reps,
    )
    space = _space(args, lock, hardware, targets)
    spec, spec_note = spec_stage_of(args, lock, host)
    info(
        f"sweep: {args.objective} at depth {depth}; threads {list(space.threads)} x ubatch "
        f"{list(space.ubatch)}, KV {list(space.kv_types)}, load mode "
        f"{['auto', *space.load_modes] if space.load_modes else targets[plan.backend].load_mode}"
        f", backends {[plan.backend, *space.backends]}; at most {sweep_size(space, spec)} runs"
    )
    for note in notes:
        info(f"  {note}")
    if spec_note:
        info(f"  {spec_note}")
    candidates, winner, default = sweep(space, llama_bench_measure(plan), progress, spec)
    if winner is None:
        for c in candidates:
            info(f"  {describe(c.flags)}: {c.error}")
        info("error: no sweep candidate ran; nothing written")
        return EXIT_FAILED
    tuning = tuning_from(
        stack=lock.resolved.stack,
        hardware=lock.resolved.hardware,
        plan=plan,
        build=lock.resolved.engine.version,
        date=now_utc(),
        candidates=candidates,
        winner=winner,
        default=default,
        model=lock.resolved.model.id,
        quant=lock.resolved.model.quant,
    )
    out = tuning_path(lock.resolved.stack, lock.resolved.hardware, path.parent)
    write_tuning(tuning, out)
    with open_store() as conn:
        add_sweep(conn, tuning)
    if args.json:
        print_json({"tuning": str(out), **tuning.model_dump(mode="json")})
    else:
        _print(candidates, winner, default)
        print(f"wrote {out}; `stackctl lock` takes it in (`lock --check` reports the change)")
    return 0


def lock_inputs_of(lock: Lockfile) -> Inputs:
    """The stack and profile the lock was made from (this box detected again when it has no
    profile file): the sweep resolves the stack again on each other backend."""
    args = argparse.Namespace(
        stack=None, hardware=None, gpu=[], gpu_count=None, cpu=None, ram=None, system=None
    )
    return inputs_for_lock(args, lock)


def _print(
    candidates: list[SweepCandidate], winner: SweepCandidate, default: SweepCandidate
) -> None:
    for c in candidates:
        figure = f"{c.tps:8.1f} ± {c.tps_std or 0:.1f} tok/s" if c.tps else f"failed: {c.error}"
        if c.method == "llama-server":
            accepted = f", {c.acceptance:.0%} of drafts accepted" if c.acceptance else ""
            figure += f" (llama-server{accepted})"
        print(f"  {describe(c.flags):48s} {figure}")
    print(f"winner: {describe(winner.flags)}")
    if winner.tps and default.tps:
        print(
            f"winner {winner.tps:.1f} tok/s vs defaults {default.tps:.1f} "
            f"({winner.tps / default.tps - 1:+.1%})"
        )
