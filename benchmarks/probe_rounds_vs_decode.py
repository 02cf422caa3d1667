"""Probe rounds against decode on this box: which of the probe's figures does decode follow?

Each trial: one second of the probe's own scan rounds (stackctl.detect.bandwidth_probe), then
llama-bench tg128 on Gemma 3 270M Q4_K_M at as many threads as the probe (one per physical
core), then one more second of rounds. Per trial it prints decode, the best round and the
median round; over the trials, how steady decode / figure is for each (coefficient of
variation): the steadier figure is the one decode follows, and the one `detect` should keep.

    STACKCTL_LLAMA_BIN=/var/cache/stackctl/build/<key>/out/bin \\
        flock /tmp/stackctl-heavy.lock .venv/bin/python benchmarks/probe_rounds_vs_decode.py \\
        [--trials 6] [--json tests/data/estimate/probe_rounds_vs_decode.json]  # appends a run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

import psutil
from speed_this_box import GEMMA, bench_binary, llama_bench_tg

from stackctl.detect.bandwidth_probe import read_rounds


def trial(binary: Path, threads: int) -> dict[str, Any]:
    before = read_rounds(threads)
    tg, std = llama_bench_tg(binary, threads, repack=False)
    rounds = [*before, *read_rounds(threads)]
    return {
        "tg": round(tg, 2),
        "tg_std": round(std, 2),
        "best_gbps": round(max(rounds), 2),
        "median_gbps": round(statistics.median(rounds), 2),
        "loadavg1": round(os.getloadavg()[0], 2),
        "rounds_gbps": [round(r, 2) for r in rounds],
    }


def steadiness(trials: list[dict[str, Any]], key: str) -> float:
    """Coefficient of variation of decode / the figure over the trials."""
    ratios = [t["tg"] / t[key] for t in trials]
    return float(statistics.pstdev(ratios) / statistics.mean(ratios))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--json", help="append the run (every round kept) to this JSON list")
    args = parser.parse_args()
    binary = bench_binary(args.bin)
    if binary is None:
        return 0
    threads = psutil.cpu_count(logical=False) or 1
    trials = []
    for i in range(args.trials):
        t = trial(binary, threads)
        trials.append(t)
        print(f"trial {i + 1}: decode {t['tg']:6.1f} tok/s | probe best round "
              f"{t['best_gbps']:5.1f} GB/s, median round {t['median_gbps']:5.1f} "
              f"({len(t['rounds_gbps'])} rounds, load {t['loadavg1']:.2f})")  # fmt: skip
    for key, label in (("best_gbps", "best round"), ("median_gbps", "median round")):
        print(f"decode / {label}: spread (coefficient of variation) {steadiness(trials, key):.1%}")
    if args.json:
        path = Path(args.json)
        runs = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        run = {"threads": threads, "model": GEMMA.name, "trials": trials}
        path.write_text(json.dumps([*runs, run], indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
