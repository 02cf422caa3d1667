"""CPU decode time per ggml weight type: llama-bench tg on one model's shape-only GGUFs.

One model (default Llama 3.2 3B: 3.2 B weights, well past the caches) is written shape-only
(estimate/shapes.py) under several llama.cpp quant recipes; llama-bench `-lm none` reads the
zeros like weights. Each recipe mixes types (Q4_K_M: Q4_K, Q6_K; Q3_K_M: Q3_K, Q4_K, Q5_K,
Q6_K), so the seconds per token are fitted as a sum over types, bytes read of that type x
seconds per byte of that type (least squares over the recipes, in alternating order over
`--passes` passes to spread the drift of a shared box). Each type's figure is printed as a time
multiplier relative to the Q4_K_M mix, the kernel mix the CPU's decode efficiencies in
catalog/backends.yaml were measured with: the source of its `quant_decode_factor`.

    .venv/bin/python benchmarks/cpu_quant_decode.py BIN_DIR [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from stackctl.detect import LiveRunner, detect_hardware
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.hosts import cpu_host
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.models.estimate import EstimateRequest
from stackctl.resources import catalog_dir

RECIPES = ("Q4_K_M", "Q4_0", "Q8_0", "Q6_K", "Q5_K_S", "Q4_K_S", "Q3_K_S", "Q3_K_M", "Q2_K",
           "IQ4_NL", "IQ4_XS", "Q5_0")  # fmt: skip
REFERENCE = "Q4_K_M"


def type_bytes(model: str, recipe: str, threads: int) -> dict[str, float]:
    """Weight bytes read per decoded token by ggml type, as the estimator counts them."""
    catalog = load_estimate_catalog(catalog_dir())
    request = EstimateRequest(model=model, quant=recipe, ctx=512, threads=threads)
    host = cpu_host(threads, [], bandwidth_gbps=20.0, memory_bytes=64 << 30)
    devices = speed_inputs(request, host, catalog)
    out: dict[str, float] = {}
    for dev in devices:
        for kind, amount in dev.type_bytes.items():
            out[kind] = out.get(kind, 0.0) + amount
    return out


def llama_bench_tg(binary: Path, model: Path, threads: int) -> float:
    argv = [str(binary), "-m", str(model), "-p", "0", "-n", "32", "-t", str(threads),
            "-r", "2", "-o", "jsonl", "-lm", "none"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    rec = next(json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{"))
    return float(rec["avg_ts"])


def fit(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per GB read of each type: least squares of s/token = sum bytes_t x c_t."""
    kinds = sorted({k for r in runs for k in r["type_bytes"]})
    a = np.array([[r["type_bytes"].get(k, 0.0) / 1e9 for k in kinds] for r in runs])
    b = np.array([1.0 / r["tps"] for r in runs])
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    return {k: float(v) for k, v in zip(kinds, solution, strict=True)}


def run(bin_dir: Path, model: str, threads: int, passes: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    catalog = load_estimate_catalog(catalog_dir())
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stackctl-quants-") as tmp:
        files = {}
        for recipe in RECIPES:
            files[recipe] = Path(tmp) / f"{model}-{recipe}.gguf"
            write_catalog_shape(files[recipe], model, recipe, catalog)
        for i in range(passes):
            order = RECIPES if i % 2 == 0 else tuple(reversed(RECIPES))
            for recipe in order:
                tps = llama_bench_tg(bin_dir / "llama-bench", files[recipe], threads)
                runs.append({"recipe": recipe, "pass": i, "tps": tps,
                             "type_bytes": type_bytes(model, recipe, threads)})  # fmt: skip
                print(f"  pass {i} {recipe:8} tg {tps:7.2f} tok/s", flush=True)
    per_gb = fit(runs)
    ref = next(r["type_bytes"] for r in runs if r["recipe"] == REFERENCE)
    ref_s = sum(v / 1e9 * per_gb[k] for k, v in ref.items()) / (sum(ref.values()) / 1e9)
    cpu = detect_hardware(LiveRunner()).cpu
    return {
        "cpu": cpu.model, "cores": cpu.cores, "flags": cpu.flags, "threads": threads,
        "model": model, "load_before": load_before, "load_after": os.getloadavg()[0],
        "runs": runs, "seconds_per_gb": per_gb,
        "factor_vs_q4_k_m_mix": {k: round(v / ref_s, 3) for k, v in per_gb.items()},
        "provenance": f"benchmarks/cpu_quant_decode.py, llama-bench in {bin_dir}: tg32 -r 2 "
                      f"-lm none on shape-only {model} files, {passes} passes",
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path, help="a llama.cpp CPU build's bin/ folder")
    parser.add_argument("--model", default="llama-3.2-3b", help="catalog model id")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the run here")
    args = parser.parse_args()
    result = run(args.bin_dir, args.model, args.threads, args.passes)
    print(f"load {result['load_before']:.2f} -> {result['load_after']:.2f}, "
          f"{result['threads']} threads, {result['model']} shape-only")  # fmt: skip
    by_recipe: dict[str, list[float]] = {}
    for r in result["runs"]:
        by_recipe.setdefault(r["recipe"], []).append(r["tps"])
    for recipe, tps in by_recipe.items():
        print(f"  {recipe:8} tg {statistics.mean(tps):7.2f} tok/s (passes {tps})")
    for kind, factor in sorted(result["factor_vs_q4_k_m_mix"].items()):
        print(f"  {kind:8} {result['seconds_per_gb'][kind]:.4f} s/GB  x{factor:.2f} of the "
              f"{REFERENCE} mix")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
