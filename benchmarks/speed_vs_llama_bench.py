"""Predicted vs measured speed: llama-bench on the real Gemma 3 270M file (CPU).

Runs pp512 and tg128 at depth 0 and at a longer depth (few reps, -t = physical cores) and
prints them next to `estimate()` for the same model, threads and depth.

    STACKCTL_LLAMA_BIN=/path/to/bin .venv/bin/python benchmarks/speed_vs_llama_bench.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stackctl.estimate import estimate
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import CpuInfo, HardwareProfile, MemoryInfo, OsInfo

REAL_GEMMA = Path("/var/cache/stackctl/mirror/gemma-3-270m-q4_k_m.gguf")
DEPTHS = (0, 4096)


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
            "-t", str(threads), "-r", "2", "-fa", "on", "-o", "jsonl"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--json", help="write measured + predicted rows here")
    args = parser.parse_args()
    binary = Path(args.bin or "") / "llama-bench"
    if not args.bin or not binary.is_file() or not REAL_GEMMA.is_file():
        print("skip: need STACKCTL_LLAMA_BIN/llama-bench and the real Gemma 3 270M file")
        return 0
    threads = physical_cores()
    hardware = HardwareProfile(
        name="bench-host",
        cpu=CpuInfo(arch="x86_64", cores=threads, threads=threads, flags=cpu_flags()),
        memory=MemoryInfo(total_bytes=16 << 30, available_bytes=16 << 30),
        os=OsInfo(system="linux"),
    )
    rows = []
    for rec in bench(binary, threads):
        depth = int(rec["n_depth"])
        kind = "pp" if int(rec["n_prompt"]) else "tg"
        request = EstimateRequest(model="", quant="", gguf_path=str(REAL_GEMMA), ctx=8192,
                                  depth=depth, threads=threads)  # fmt: skip
        speed = estimate(request, hardware).speed
        pred, rng = (speed.pp_tps, speed.pp_tps_range) if kind == "pp" else (
            speed.tg_tps, speed.tg_tps_range)  # fmt: skip
        rows.append({"test": f"{kind} @ d{depth}", "measured": rec["avg_ts"],
                     "predicted": pred, "range": rng, "threads": threads,
                     "build": rec.get("build_commit")})  # fmt: skip
    print(f"{'test':12} {'measured':>10} {'predicted':>10} {'range':>18} {'ratio':>6}")
    for r in rows:
        lo, hi = r["range"]
        print(f"{r['test']:12} {r['measured']:10.1f} {r['predicted']:10.1f} "
              f"{lo:8.1f}-{hi:<8.1f} {r['predicted'] / r['measured']:6.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
