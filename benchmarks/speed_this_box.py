"""Acceptance on this box: a fresh `stackctl detect` (bandwidth probe), then `plan tiny-cpu`,
against llama-bench tg128 on the same Gemma 3 270M Q4_K_M file, in one run.

Prints the measured bandwidth, the plan's decode prediction with its range, llama-bench's
figure, the error and the range's half-width; `--json` keeps the run (with load averages:
the box is shared, so the probe and llama-bench see the same neighbours only if close in
time; the probe runs again after llama-bench and both readings are recorded).

    STACKCTL_LLAMA_BIN=/var/cache/stackctl/build/<key>/out/bin \\
        flock /tmp/stackctl-heavy.lock .venv/bin/python benchmarks/speed_this_box.py \\
        [--json tests/data/estimate/this_box_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stackctl.detect.bandwidth_probe import measure_read_gbps

GEMMA = Path("/var/cache/stackctl/test-mirror/gemma-3-270m-q4_k_m.gguf")


def stackctl(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "stackctl", *argv, "--json"], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def llama_bench_tg(binary: Path, threads: int, repack: bool) -> tuple[float, float]:
    """tg128 with the plan's threads and, as the plan serves it, --no-repack where it has it."""
    argv = [str(binary), "-m", str(GEMMA), "-p", "0", "-n", "128", "-t", str(threads),
            "-r", "3", "-fa", "on", "--repack", "1" if repack else "0", "-o", "jsonl"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    rec = next(json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{"))
    return float(rec["avg_ts"]), float(rec.get("stddev_ts") or 0.0)


def run(binary: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stackctl-bw-") as cache:
        env = {**os.environ, "STACKCTL_CACHE_DIR": cache}  # fresh: no cached probe
        load_before = os.getloadavg()[0]
        profile = stackctl(["detect"], env)
        plan = stackctl(["plan", "tiny-cpu"], env)
    cpu = profile["cpu"]
    predicted = plan["chosen"]["predicted"]
    threads = cpu["cores"] or cpu["threads"] or 1
    repack = "--no-repack" not in plan["chosen"]["flags"]
    measured, std = llama_bench_tg(binary, threads, repack)
    bw_after = measure_read_gbps(threads)
    tg, (low, high) = predicted["tg_tps"], predicted["tg_tps_range"]
    stated = [b for b in predicted["basis"] if "measured on this box" in b]
    return {
        "cpu": cpu["model"],
        "threads": threads,
        "repack": repack,
        "loadavg1_before": load_before,
        "loadavg1_after": os.getloadavg()[0],
        "bandwidth_gbps": cpu["bandwidth_gbps"],
        "bandwidth_source": cpu["bandwidth_source"],
        # set where the probe ran beside other load (detect warns; the range reaches this high)
        "bandwidth_high_gbps": cpu.get("bandwidth_high_gbps"),
        "bandwidth_gbps_after_bench": round(bw_after, 2),
        "predicted_tg": tg,
        "predicted_range": [low, high],
        "measured_tg": measured,
        "measured_std": std,
        "error": tg / measured - 1.0,
        "range_half_width": max(high / tg - 1.0, 1.0 - low / tg),
        "measured_over_predicted": measured / tg,  # x the catalog figure: the implied one
        "basis_states_bandwidth": stated[0] if stated else None,
    }


def bench_binary(bin_dir: str | None) -> Path | None:
    """llama-bench in `bin_dir` where it and the Gemma file are at hand; else None, said."""
    binary = Path(bin_dir or "") / "llama-bench"
    if not bin_dir or not binary.is_file() or not GEMMA.is_file():
        print("skip: need STACKCTL_LLAMA_BIN/llama-bench and the Gemma 3 270M test-mirror file")
        return None
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--json", help="append the run to this JSON list")
    args = parser.parse_args()
    binary = bench_binary(args.bin)
    if binary is None:
        return 0
    r = run(binary)
    print(f"CPU {r['cpu']}, {r['threads']} threads, repack {r['repack']} (as the plan serves), "
          f"load {r['loadavg1_before']:.2f} before")  # fmt: skip
    print(f"detect: bandwidth {r['bandwidth_gbps']} GB/s ({r['bandwidth_source']}); "
          f"{r['bandwidth_gbps_after_bench']} GB/s re-measured after llama-bench")  # fmt: skip
    if r["bandwidth_high_gbps"]:
        print(f"  the probe ran beside other load: up to {r['bandwidth_high_gbps']} GB/s alone")
    print(f"plan tiny-cpu: decode {r['predicted_tg']} tok/s "
          f"(range {r['predicted_range'][0]}-{r['predicted_range'][1]}, "
          f"+-{r['range_half_width']:.0%})")  # fmt: skip
    print(f"llama-bench tg128: {r['measured_tg']:.1f} +- {r['measured_std']:.1f} tok/s")
    print(f"error {r['error']:+.1%} (target within 15 %), range +-{r['range_half_width']:.0%} "
          f"(target <= 30 %)")  # fmt: skip
    print(f"basis: {r['basis_states_bandwidth']}")
    if args.json:
        path = Path(args.json)
        runs = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        path.write_text(json.dumps([*runs, r], indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
