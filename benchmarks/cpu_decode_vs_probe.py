"""CPU decode against the detect probe: how much of the probe's stream llama.cpp's decode reads.

The probe (detect/bandwidth_probe.py) measures what the cores stream; decode also has to do the
quantised dot products. This runs, in one quiet window: the probe at several buffer sizes (the
cache knee), then llama-bench tg at 1 and 2 threads on the real Gemma 3 270M file and on
shape-only Q4_K_M GGUFs of three sizes (estimate/shapes.py; `-lm none` reads the zeros like
weights), then the probe again. Each row's efficiency is tg x model bytes / probe: the models
all tie the output to the embedding, so a token reads the whole file. The result is
catalog/backends.yaml's `measured_dot_decode_efficiency` source on an int8-dot CPU.

    .venv/bin/python benchmarks/cpu_decode_vs_probe.py BIN_DIR [--repack 0] [--json OUT]
        [--quants Q4_0,Q8_0,IQ2_XXS,...]

`--quants` adds Llama 3.2 1B shape-only files in those quant types (catalog/quants.yaml
recipes): where the efficiency falls well below the others' at the same thread count, the
type's dot product, not the memory, sets decode (an i-quant's grid lookups at few threads).

`--repack 0` runs llama-bench as a lock with --no-repack serves (quirk x86-amx-no-repack: the
weights stay in their file layout, no AMX or repacked CPU kernels); the run records it.
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

import stackctl.detect.bandwidth_probe as probe
from stackctl.detect import LiveRunner, detect_hardware
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.resources import catalog_dir

GEMMA = Path("/var/cache/stackctl/test-mirror/gemma-3-270m-q4_k_m.gguf")
SHAPES = ("gemma-3-270m", "llama-3.2-1b", "qwen3-4b")
THREADS = (1, 2)
KNEE_MIB = (64, 128, 256, 512, 2048)


def read_gbps(total_mib: int, threads: int) -> float:
    """The probe with every buffer together `total_mib` large (the detect default is 512)."""
    saved = probe._MIN_TOTAL, probe._MAX_TOTAL, probe._PER_THREAD
    probe._MIN_TOTAL = probe._MAX_TOTAL = probe._PER_THREAD = total_mib << 20
    try:
        return round(probe.measure_read_gbps(threads), 2)
    finally:
        probe._MIN_TOTAL, probe._MAX_TOTAL, probe._PER_THREAD = saved


def llama_bench_tg(
    binary: Path, model: Path, threads: int, shape_only: bool, repack: int
) -> dict[str, Any]:
    argv = [str(binary), "-m", str(model), "-p", "0", "-n", "64", "-t", str(threads),
            "-r", "2", "-o", "jsonl", "--repack", str(repack),
            *(["-lm", "none"] if shape_only else [])]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    rec = next(json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{"))
    return {"tps": float(rec["avg_ts"]), "std": float(rec["stddev_ts"]),
            "bytes": int(rec["model_size"])}  # fmt: skip


QUANT_MODEL = "llama-3.2-1b"


def run(bin_dir: Path, repack: int = 1, quants: tuple[str, ...] = ()) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    knee = {mib: [read_gbps(mib, t) for t in THREADS] for mib in KNEE_MIB}
    catalog = load_estimate_catalog(catalog_dir())
    models = {"gemma-3-270m (real file)": (GEMMA, False)}
    with tempfile.TemporaryDirectory(prefix="stackctl-cpu-") as tmp:
        for model_id in SHAPES:
            path = Path(tmp) / f"{model_id}.gguf"
            write_catalog_shape(path, model_id, "Q4_K_M", catalog)
            models[f"{model_id} (shape-only)"] = (path, True)
        for quant in quants:
            path = Path(tmp) / f"{QUANT_MODEL}-{quant}.gguf"
            write_catalog_shape(path, QUANT_MODEL, quant, catalog)
            models[f"{QUANT_MODEL} {quant} (shape-only)"] = (path, True)
        bench = {(name, t): llama_bench_tg(bin_dir / "llama-bench", path, t, shape, repack)
                 for name, (path, shape) in models.items() for t in THREADS}  # fmt: skip
    after = [read_gbps(512, t) for t in THREADS]
    rows = []
    for (name, threads), b in bench.items():
        i = THREADS.index(threads)
        reference = statistics.mean([knee[512][i], knee[2048][i], after[i]])
        read = b["tps"] * b["bytes"] / 1e9
        rows.append({"model": name, "threads": threads, "tg_tps": b["tps"], "stddev": b["std"],
                     "model_bytes": b["bytes"], "read_gbps": round(read, 2),
                     "probe_gbps": round(reference, 2),
                     "efficiency": round(read / reference, 3)})  # fmt: skip
    cpu = detect_hardware(LiveRunner()).cpu
    return {"cpu": cpu.model, "cores": cpu.cores, "flags": cpu.flags,
            "repack": repack, "load_before": load_before, "load_after": os.getloadavg()[0],
            "probe_by_total_mib": knee, "probe_after": after, "rows": rows,
            "provenance": f"benchmarks/cpu_decode_vs_probe.py, llama-bench in {bin_dir}; tg64 "
                          f"-r 2 --repack {repack}, shape-only files with -lm none"
                          + (f"; quant types of {QUANT_MODEL}: {', '.join(quants)}" if quants
                             else "")}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path, help="a llama.cpp CPU build's bin/ folder")
    parser.add_argument(
        "--repack",
        type=int,
        choices=(0, 1),
        default=1,
        help="llama-bench --repack (0: as a lock with --no-repack serves)",
    )
    parser.add_argument("--json", type=Path, help="write the run here")
    parser.add_argument(
        "--quants", default="", help=f"comma-separated quant types of {QUANT_MODEL} to add"
    )
    args = parser.parse_args()
    quants = tuple(q for q in args.quants.split(",") if q)
    result = run(args.bin_dir, args.repack, quants)
    print(f"load {result['load_before']:.2f} -> {result['load_after']:.2f}; probe GB/s by "
          f"buffer MiB (1, 2 threads): {result['probe_by_total_mib']}")  # fmt: skip
    for r in result["rows"]:
        print(f"{r['model']:28} t={r['threads']} tg {r['tg_tps']:7.2f} tok/s reads "
              f"{r['read_gbps']:5.2f} GB/s of the probe's {r['probe_gbps']:5.2f}: "
              f"{r['efficiency']:.2f}")  # fmt: skip
    effs = [r["efficiency"] for r in result["rows"]]
    print(f"efficiency median {statistics.median(effs):.2f}, range {min(effs):.2f}-{max(effs):.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
