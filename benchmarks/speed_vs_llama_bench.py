"""Predicted vs measured speed: llama-bench on the real Gemma 3 270M file (CPU), noise-aware.

A shared machine makes absolute tok/s unreliable, so one run measures what the roofline needs
next to the model: a read-bandwidth reference (libc memchr over a buffer far larger than the
caches, one thread per core, before and after), then llama-bench pp512/tg128 at depth 0 and a
longer depth. Printed side by side:

- the estimate with the catalog's *assumed* per-core bandwidth (what a user without a
  measurement gets: the basis says ASSUMED and the range is widened);
- the estimate with the bandwidth measured in this run (absolute check of the roofline);
- depth ratios tg(d)/tg(0) and pp(d)/pp(0), measured vs predicted: they need no bandwidth and
  survive a constant slowdown from other load;
- the decode efficiency this run implies (the calibration figure), as a row to keep.

The load average before and after is printed and recorded; a loaded machine is called out.

    STACKCTL_LLAMA_BIN=/path/to/bin .venv/bin/python benchmarks/speed_vs_llama_bench.py \
        [--json tests/data/estimate/llama_bench_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stackctl.detect.bandwidth_probe import measure_read_gbps
from stackctl.estimate import estimate
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.hosts import cpu_host
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.resources import catalog_dir

REAL_GEMMA = Path("/var/cache/stackctl/mirror/gemma-3-270m-q4_k_m.gguf")
DEPTHS = (0, 4096)
LOADED = 0.5  # load average per core above which the machine counts as busy


def physical_cores() -> int:
    cores = set()
    for block in Path("/proc/cpuinfo").read_text(encoding="utf-8").split("\n\n"):
        parts = (ln.partition(":") for ln in block.splitlines())
        fields = {k.strip(): v.strip() for k, _, v in parts}
        if "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    return max(len(cores), 1)


def cpu_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("flags"):
            return [f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx"))]
    return []


def bench(binary: Path, threads: int) -> list[dict[str, Any]]:
    depths = ",".join(str(d) for d in DEPTHS)
    argv = [str(binary), "-m", str(REAL_GEMMA), "-p", "512", "-n", "128", "-d", depths,
            "-t", str(threads), "-r", "3", "-fa", "on", "-o", "jsonl"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def predict(threads: int, depth: int, bandwidth: float | None) -> Estimate:
    request = EstimateRequest(model="", quant="", gguf_path=str(REAL_GEMMA), ctx=8192,
                              depth=depth, threads=threads)  # fmt: skip
    host = cpu_host(threads, cpu_flags(), bandwidth_gbps=bandwidth, memory_bytes=16 << 30)
    return estimate(request, host)


def rows_for(records: list[dict[str, Any]], threads: int, bw: float) -> list[dict[str, Any]]:
    rows = []
    for rec in records:
        depth = int(rec["n_depth"])
        kind = "pp" if int(rec["n_prompt"]) else "tg"
        assumed, measured_bw = predict(threads, depth, None), predict(threads, depth, bw)

        def pick(e: Estimate, kind: str = kind) -> tuple[float, tuple[float, float]]:
            if kind == "pp":
                return e.speed.pp_tps, e.speed.pp_tps_range
            return e.speed.tg_tps, e.speed.tg_tps_range

        rows.append({
            "test": f"{kind} @ d{depth}", "kind": kind, "depth": depth,
            "measured": rec["avg_ts"], "stddev": rec.get("stddev_ts"),
            "predicted_assumed_bw": pick(assumed)[0], "range_assumed_bw": pick(assumed)[1],
            "predicted_measured_bw": pick(measured_bw)[0],
            "range_measured_bw": pick(measured_bw)[1],
            "threads": threads, "build": rec.get("build_number"),
        })  # fmt: skip
    return rows


def depth_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in ("pp", "tg"):
        by_depth = {r["depth"]: r for r in rows if r["kind"] == kind}
        if 0 not in by_depth or len(by_depth) < 2:
            continue
        base = by_depth[0]
        for depth, r in sorted(by_depth.items()):
            if depth:
                out.append({
                    "ratio": f"{kind}(d{depth})/{kind}(d0)",
                    "measured": r["measured"] / base["measured"],
                    "predicted": r["predicted_measured_bw"] / base["predicted_measured_bw"],
                })  # fmt: skip
    return out


def print_report(report: dict[str, Any]) -> None:
    load = report["load"]
    busy = report["machine_loaded"]
    print(f"uptime before: {load['uptime_before']}")
    print(f"uptime after:  {load['uptime_after']}")
    print(f"read bandwidth ({report['threads']} threads, memchr): "
          f"{report['bandwidth_gbps_before']:.1f} GB/s before, "
          f"{report['bandwidth_gbps_after']:.1f} GB/s after")  # fmt: skip
    if busy:
        print("WARNING: the machine was LOADED during this run (load average per core above "
              f"{LOADED}); absolute tok/s are not clean — trust the ratios more.")  # fmt: skip
    print(f"{'test':10} {'measured':>14} {'pred (assumed bw)':>26} "
          f"{'pred (measured bw)':>26}")  # fmt: skip
    for r in report["rows"]:
        lo, hi = r["range_assumed_bw"]
        mlo, mhi = r["range_measured_bw"]
        sd = r["stddev"] or 0.0
        print(f"{r['test']:10} {r['measured']:8.1f} ±{sd:<5.1f} "
              f"{r['predicted_assumed_bw']:8.1f} ({lo:6.1f}-{hi:<6.1f}) "
              f"{r['predicted_measured_bw']:8.1f} ({mlo:6.1f}-{mhi:<6.1f})")  # fmt: skip
    for r in report["ratios"]:
        print(f"{r['ratio']:18} measured {r['measured']:.3f}  predicted {r['predicted']:.3f}")
    print(f"implied CPU decode efficiency (tg@d0 measured / roofline at the measured bandwidth "
          f"x the catalog figure): {report['implied_decode_efficiency']:.3f}")  # fmt: skip


def run(binary: Path) -> dict[str, Any]:
    threads = physical_cores()
    before = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    load_before = os.getloadavg()[0]
    bw_before = measure_read_gbps(threads, seconds=2.0)
    records = bench(binary, threads)
    bw_after = measure_read_gbps(threads, seconds=2.0)
    after = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    load_after = os.getloadavg()[0]
    bandwidth = (bw_before + bw_after) / 2  # a shared VM: one reading alone swings by 40 %
    rows = rows_for(records, threads, bandwidth)
    tg0 = next(r for r in rows if r["test"] == "tg @ d0")
    catalog = load_estimate_catalog(catalog_dir())
    decode_eff = catalog.backends.backends["cpu"].decode_efficiency  # what the prediction used
    return {
        "threads": threads,
        "load": {
            "uptime_before": before.strip(),
            "uptime_after": after.strip(),
            "loadavg1_before": load_before,
            "loadavg1_after": load_after,
        },
        # the load before: the one after counts this benchmark's own threads
        "machine_loaded": load_before / threads > LOADED,
        "bandwidth_gbps_before": bw_before,
        "bandwidth_gbps_after": bw_after,
        "rows": rows,
        "ratios": depth_ratios(rows),
        "implied_decode_efficiency": decode_eff * tg0["measured"] / tg0["predicted_measured_bw"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--json", help="write the report (calibration rows) here")
    args = parser.parse_args()
    binary = Path(args.bin or "") / "llama-bench"
    if not args.bin or not binary.is_file() or not REAL_GEMMA.is_file():
        print("skip: need STACKCTL_LLAMA_BIN/llama-bench and the real Gemma 3 270M file")
        return 0
    report = run(binary)
    print_report(report)
    if args.json:
        report["provenance"] = (
            "benchmarks/speed_vs_llama_bench.py: llama-bench b11434 CPU build (/tmp/lbuild/bin), "
            "real gemma-3-270m-q4_k_m.gguf, -p 512 -n 128 -d 0,4096 -r 3 -fa on "
            f"-t {report['threads']}; read-bandwidth reference by the detect probe "
            "(stackctl.detect.bandwidth_probe: libc memchr, median round of ~2 s), before and "
            f"after; CPU '{_cpu_model()}' (not in catalog/hardware.yaml); machine_loaded says "
            "whether other work shared the cores"
        )
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
