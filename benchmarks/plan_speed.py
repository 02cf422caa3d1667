"""Wall time of `stackctl plan` as a user runs it (a new CLI process, Python start-up and imports
included), and of resolving 500 declared hosts in one process.

    .venv/bin/python benchmarks/plan_speed.py [--runs 9] [--hosts 500]

Each plan (several declared boxes and stacks, and detection of this machine) is run --runs
times; per plan the median and best wall times are printed with the median CPU time (user +
system of the process), which a loaded machine disturbs less than wall time, and the load
average, so a slow figure can be told from a busy box. The summary line takes the median and
the max over the declared plans of their medians. Target: <= 0.5 s wall for one host.

The first run of each plan is a warm-up, not counted: it fills the user's cache of validated
catalogs (stackctl.loadcache) and parsed YAML (stackctl.yamlio), which every later plan on the
box reads. One line times the first plan after an install or a catalog change: an empty cache.

The package's bytecode is compiled first (`compileall`), as an installed package has it (pip
compiles at install): a shell with PYTHONDONTWRITEBYTECODE=1 and a source checkout would
otherwise recompile every module on every run (~0.15 s on a loaded 2-core box), which is not
what a user's `stackctl plan` pays.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Declared boxes (no probing): the target holds for each of them.
PLANS = [
    ["plan", "tiny-cpu", "--hardware", "tests/data/profiles/cpu-x86-2core.yaml", "--json"],
    ["plan", "agentic-coder", "--gpu", "rtx 4090", "--cpu", "ryzen 9 7950x", "--ram", "64"],
    ["plan", "--workload", "chat", "--gpu", "Apple M3 Ultra", "--ram", "512"],
    ["plan", "--gpu", "rtx 3070 ti", "--ram", "64"],
    ["plan", "agentic-coder", "--gpu", "rtx 3070 ti", "--ram", "64"],
    ["plan", "chat", "--gpu", "rtx 3070 ti", "--ram", "64"],
    ["plan", "--system", "strix halo 128gb"],
    ["plan", "--system", "raspberry pi 5 8gb"],
]
DETECT = ["plan"]  # this machine, detected: probes (subprocesses, /proc) add their own time
HOSTS = [
    {"gpus": ["rtx 4060"], "cpu": "ryzen 9 7950x", "ram_gib": 64},
    {"gpus": ["rtx 4090"], "cpu": "ryzen 9 7950x", "ram_gib": 64},
    {"gpus": ["rtx 4080"], "cpu": "ryzen 9 7950x", "ram_gib": 32},
    {"gpus": ["rtx 3090"], "cpu": "ryzen 9 9950x", "ram_gib": 128},
    {"gpus": [], "system": "strix halo 128gb"},
    {"gpus": [], "system": "strix halo 64gb"},
    {"gpus": [], "system": "mac studio m4 max 128gb"},
    {"gpus": [], "system": "raspberry pi 5 8gb"},
    {"gpus": ["rtx 6000 ada"], "gpu_count": 4, "cpu": "epyc 9474f", "ram_gib": 256},
    {"gpus": [], "system": "dgx spark"},
]
STACKS = ["default", "agentic-coder", "chat", "edge-extract"]


def compile_bytecode() -> None:
    import compileall

    compileall.compile_dir(ROOT / "src" / "stackctl", quiet=1)


def time_process(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report_process(label: str, command: list[str], runs: int) -> tuple[float, float]:
    """Print and return the median wall and CPU seconds of `runs` runs after one warm-up."""
    time_process(command)
    walls, cpus = zip(*(time_process(command) for _ in range(runs)), strict=True)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"{label}: wall median {wall:.3f} s, best {min(walls):.3f} s; "
          f"CPU median {cpu:.3f} s ({runs} runs)")  # fmt: skip
    return wall, cpu


def report_cold(label: str, command: list[str], runs: int) -> None:
    """Median wall and CPU seconds of `command` with an empty cache each run."""
    figures = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            figures.append(time_process(command, {**os.environ, "STACKCTL_CACHE_DIR": cache}))
    walls, cpus = zip(*figures, strict=True)
    print(f"{label}: wall median {statistics.median(walls):.3f} s; "
          f"CPU median {statistics.median(cpus):.3f} s ({runs} runs)")  # fmt: skip


def time_hosts(n: int) -> tuple[float, int, int]:
    from stackctl.catalog import load_catalog
    from stackctl.detect import declare_hardware, load_chip_table
    from stackctl.errors import ResolutionError
    from stackctl.resolve import make_resolver
    from stackctl.resources import catalog_dir
    from stackctl.spec import load_stack, stack_path

    start = time.perf_counter()
    resolver = make_resolver(load_catalog(catalog_dir()))
    table = load_chip_table()  # a fleet run reads the chip table once, not once a host
    stacks = [load_stack(stack_path(s)) for s in STACKS]
    failed = 0
    pairs = itertools.islice(itertools.cycle(itertools.product(HOSTS, stacks)), n)
    for hw_args, spec in pairs:
        try:
            resolver.resolve(spec, declare_hardware(**hw_args, table=table))  # type: ignore[arg-type]
        except ResolutionError:
            failed += 1
    return time.perf_counter() - start, resolver.session.calls, failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    compile_bytecode()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs")
    python = [sys.executable, "-c", "pass"]
    report_process("python start-up alone", python, args.runs)
    stackctl = [sys.executable, "-m", "stackctl"]
    figures = [report_process(f"stackctl {' '.join(a)}", [*stackctl, *a], args.runs) for a in PLANS]
    walls, cpus = zip(*figures, strict=True)
    print(f"declared plans ({len(PLANS)}): wall median {statistics.median(walls):.3f} s, "
          f"max {max(walls):.3f} s; CPU median {statistics.median(cpus):.3f} s, "
          f"max {max(cpus):.3f} s (target <= 0.5 s wall)")  # fmt: skip
    report_process("stackctl plan (detect this machine)", [*stackctl, *DETECT], args.runs)
    cold = PLANS[2]
    label = f"stackctl {' '.join(cold)}, empty cache"
    report_cold(label, [*stackctl, *cold], max(args.runs // 3, 1))
    seconds, calls, failed = time_hosts(args.hosts)
    distinct = len(HOSTS) * len(STACKS)
    print(f"{args.hosts} declared hosts ({distinct} distinct host x stack pairs) in one "
          f"process: {seconds:.2f} s, {calls} estimator calls, {failed} without a stack "
          "(target < 10 s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
