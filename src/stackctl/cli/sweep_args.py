"""`stackctl bench --sweep`: options, the search over llama-bench runs, the tuning file."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from stackctl import layout
from stackctl.bench.models import SweepCandidate
from stackctl.bench.rows import now_utc
from stackctl.bench.store import add_sweep, open_store
from stackctl.bench.sweep import (
    SweepPlan,
    SweepSpace,
    llama_bench_measure,
    sweep,
    thread_choices,
    tuning_from,
)
from stackctl.bench.tuning import tuning_path, write_tuning
from stackctl.cli.bench_args import lock_from, lock_hardware, progress
from stackctl.cli.output import info, print_json
from stackctl.errors import EXIT_FAILED, InputError
from stackctl.layout import host_layout
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile

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
    group.add_argument("--bench-args", help="llama-bench flags every candidate keeps")
    group.add_argument("--reps", type=int, default=3, help="llama-bench repetitions per point")


def _space(args: argparse.Namespace, lock: Lockfile, hw: HardwareProfile) -> SweepSpace:
    rt = lock.resolved.runtime
    kv = args.kv_types or (KV_TYPES if rt.flash_attn != "off" else KV_TYPES[:1])
    moe = lock.resolved.placement.n_cpu_moe
    return SweepSpace(
        threads=args.threads or thread_choices(hw.cpu.cores, hw.cpu.threads),
        ubatch=args.ubatch or UBATCH,
        kv_types=kv,
        n_cpu_moe=[n for n in (moe - 2, moe - 1, moe + 1) if n >= 0] if moe else [],
    )


def _extra(lock: Lockfile, fixed: str | None) -> list[str]:
    """Flags the lock sets that the sweep keeps fixed, in llama-bench's spelling."""
    r = lock.resolved
    extra = ["-fa", r.runtime.flash_attn]
    if r.placement.ngl:
        extra += ["-ngl", str(min(r.placement.ngl, 999))]
    return extra + fixed_bench_args(lock, fixed)


def fixed_bench_args(lock: Lockfile, fixed: str | None) -> list[str]:
    """What every llama-bench run keeps: the lock's --no-repack, and `--bench-args`
    (e.g. "--repack 0")."""
    extra = ["--repack", "0"] if "--no-repack" in lock.resolved.runtime.server_args else []
    return extra + shlex.split(fixed or "")


def run_sweep(args: argparse.Namespace, lock_path: str | None) -> int:
    lock, path = lock_from(lock_path)
    hardware = lock_hardware(lock)
    host = host_layout()
    context = lock.resolved.runtime.context
    depth = args.depth if args.depth is not None else min(context // 2, 4096)
    if depth >= context:
        raise InputError(f"--depth {depth} is not below the context ({context})")
    plan = SweepPlan(
        llama_bench=f"{layout.engine_dir(lock, host)}/bin/llama-bench",
        model_path=layout.model_path(lock, host),
        objective=args.objective,
        depth=depth,
        reps=args.reps,
        extra=_extra(lock, args.bench_args),
    )
    space = _space(args, lock, hardware)
    info(
        f"sweep: {args.objective} at depth {depth}; threads {list(space.threads)} x ubatch "
        f"{list(space.ubatch)}, KV {list(space.kv_types)}"
    )
    candidates, winner, default = sweep(space, llama_bench_measure(plan), progress)
    if winner is None:
        for c in candidates:
            info(f"  {c.flags.model_dump(exclude_none=True)}: {c.error}")
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


def _print(
    candidates: list[SweepCandidate], winner: SweepCandidate, default: SweepCandidate
) -> None:
    for c in candidates:
        flags = " ".join(f"{k}={v}" for k, v in c.flags.model_dump(exclude_none=True).items())
        figure = f"{c.tps:8.1f} tok/s" if c.tps else f"failed: {c.error}"
        print(f"  {flags or 'llama.cpp defaults':40s} {figure}")
    if winner.tps and default.tps:
        print(
            f"winner {winner.tps:.1f} tok/s vs defaults {default.tps:.1f} "
            f"({winner.tps / default.tps - 1:+.1%})"
        )
