"""Decode and prefill on Mesa's lavapipe (llama.cpp's Vulkan backend on the CPU) vs the CPU
backend: same model, same run, next to what the estimator predicts for each.

Lavapipe is a software Vulkan device: the estimator sees it as a unified-memory device whose
bandwidth is the CPU's (measured in this run, libc memchr, as speed_vs_llama_bench.py does).
The row it writes (tests/data/estimate/lavapipe_vs_cpu.json) is a measured point for a software
device with the CPU's bandwidth, with the predicted figures beside the measured ones.

    flock /tmp/stackctl-heavy.lock .venv/bin/python benchmarks/vulkan_vs_cpu.py \
        --cpu-bin BUILD/out/bin --vulkan-bin BUILD/out/bin --model GGUF [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from speed_vs_llama_bench import cpu_flags, physical_cores

from stackctl.detect.bandwidth_probe import measure_read_gbps
from stackctl.estimate import estimate
from stackctl.estimate.hosts import cpu_host
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.models.hardware import Accelerator

PROMPT, DECODE, REPS = 512, 128, 3
# b11434's AMX kernels crash (SIGSEGV) on AMX Xeons like this VM; main's catalog quirk
# x86-amx-no-repack serves with --no-repack, so both runs here keep the file layout too.
REPACK = ("--repack", "0")


def bench(binary: Path, model: Path, threads: int, ngl: int, env: dict[str, str]) -> dict[str, Any]:
    argv = [str(binary), "-m", str(model), "-p", str(PROMPT), "-n", str(DECODE), "-t",
            str(threads), "-ngl", str(ngl), "-r", str(REPS), "-fa", "on", *REPACK,
            "-o", "jsonl"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=True,
                          env={**os.environ, **env})  # fmt: skip
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    pp = next(r for r in records if int(r["n_prompt"]))
    tg = next(r for r in records if int(r["n_gen"]))
    return {
        "backends": tg.get("backends"), "devices": tg.get("gpu_info"), "ngl": ngl,
        "pp_tps": pp["avg_ts"], "pp_stddev": pp.get("stddev_ts"),
        "tg_tps": tg["avg_ts"], "tg_stddev": tg.get("stddev_ts"), "build": tg.get("build_number"),
    }  # fmt: skip


def predict(model: Path, threads: int, bandwidth: float, *, lavapipe: bool) -> Estimate:
    host = cpu_host(threads, cpu_flags(), bandwidth_gbps=bandwidth, memory_bytes=16 << 30)
    request = EstimateRequest(model="", quant="", gguf_path=str(model), ctx=4096,
                              threads=threads)  # fmt: skip
    if lavapipe:
        device = Accelerator(vendor="mesa", name="llvmpipe", memory_bytes=16 << 30,
                             unified=True, bandwidth_gbps=bandwidth,
                             bandwidth_source="CPU, measured in this run")  # fmt: skip
        host = host.model_copy(update={"accelerators": [device]})
        request = request.model_copy(update={"backend": "vulkan", "ngl": 999})
    return estimate(request, host)


def row(name: str, measured: dict[str, Any], predicted: Estimate) -> dict[str, Any]:
    speed = predicted.speed
    return {"device": name, **measured,
            "predicted_tg_tps": speed.tg_tps, "predicted_tg_range": speed.tg_tps_range,
            "predicted_pp_tps": speed.pp_tps, "predicted_pp_range": speed.pp_tps_range,
            "basis": [b for b in predicted.basis if b.startswith("speed")]}  # fmt: skip


def run(cpu_bin: Path, vulkan_bin: Path, model: Path) -> dict[str, Any]:
    threads = physical_cores()
    load_before = os.getloadavg()[0]
    bw_before = measure_read_gbps(threads)
    cpu = bench(cpu_bin / "llama-bench", model, threads, ngl=0, env={})
    # ggml-vulkan skips CPU-type devices unless named (catalog/quirks.yaml
    # vulkan-software-device-visible)
    vulkan = bench(vulkan_bin / "llama-bench", model, threads, ngl=99,
                   env={"GGML_VK_VISIBLE_DEVICES": "0"})  # fmt: skip
    bw_after = measure_read_gbps(threads)
    bandwidth = (bw_before + bw_after) / 2
    return {
        "threads": threads,
        "loadavg1_before": load_before,
        "machine_loaded": load_before / threads > 0.5,
        "bandwidth_gbps": bandwidth,
        "bandwidth_gbps_before_after": [bw_before, bw_after],
        "rows": [
            row("cpu", cpu, predict(model, threads, bandwidth, lavapipe=False)),
            row("lavapipe", vulkan, predict(model, threads, bandwidth, lavapipe=True)),
        ],
        "lavapipe_over_cpu_tg": vulkan["tg_tps"] / cpu["tg_tps"],
        "lavapipe_over_cpu_pp": vulkan["pp_tps"] / cpu["pp_tps"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-bin", type=Path, required=True)
    parser.add_argument("--vulkan-bin", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--json", help="write the report (the measured row) here")
    args = parser.parse_args()
    report = run(args.cpu_bin, args.vulkan_bin, args.model)
    loaded = " (machine LOADED: absolute figures are not clean)" if report["machine_loaded"] else ""
    print(f"threads {report['threads']}, bandwidth {report['bandwidth_gbps']:.1f} GB/s{loaded}")
    for r in report["rows"]:
        lo, hi = r["predicted_tg_range"]
        print(f"{r['device']:9} tg{DECODE} {r['tg_tps']:7.1f} ±{r['tg_stddev'] or 0:.1f} "
              f"(predicted {r['predicted_tg_tps']:.1f}, {lo:.1f}-{hi:.1f})  "
              f"pp{PROMPT} {r['pp_tps']:7.1f} (predicted {r['predicted_pp_tps']:.1f})  "
              f"[{r['backends']}: {r['devices']}]")  # fmt: skip
    print(
        f"lavapipe / cpu: tg {report['lavapipe_over_cpu_tg']:.2f}, "
        f"pp {report['lavapipe_over_cpu_pp']:.2f}"
    )
    if args.json:
        report["provenance"] = (
            "benchmarks/vulkan_vs_cpu.py: llama-bench b11434, CPU build (-ngl 0) then Vulkan "
            f"build on Mesa lavapipe (-ngl 99), {args.model.name}, -p {PROMPT} -n {DECODE} "
            f"-r {REPS} -fa on -t {report['threads']}, one run; bandwidth: libc memchr before+after"
        )
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
