"""The steps of benchmarks/gpu_check.sh that need Python: facts, build flags, shape-only GGUFs
with random routers, llama-bench and llama-fit-params on them, and `estimate` beside each.

Every step rewrites the result JSON before the next starts, so a timeout still leaves what
was measured. Offline: nothing is downloaded (the llama.cpp source travels with the check).

    python benchmarks/gpu_check.py flags              # CMake flags for the GPU present
    python benchmarks/gpu_check.py run --bin DIR --work DIR --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stackctl.catalog import load_catalog
from stackctl.detect import LiveRunner, detect_hardware
from stackctl.engines import llamacpp
from stackctl.estimate import estimate
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.estimate.recipe import TypedTensor
from stackctl.estimate.shapes import ALIGN, write_catalog_shape
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

# dense, MoE, hybrid (Gated DeltaNet + attention): one of each architecture family
MODELS = (("dense", "llama-3.1-8b", "Q4_K_M"), ("moe", "qwen3-30b-a3b", "Q4_K_M"),
          ("hybrid", "qwen3.6-27b", "Q4_K_M"))  # fmt: skip
DEPTHS = (0, 8192)
ROUTER = re.compile(r"ffn_gate_inp")
# llama-fit-params' per-device lines: "CUDA0 compute buffer size = X MiB", KV, model
_MIB = re.compile(r"(\w+) (compute|KV|model) buffer size =\s+([\d.]+) MiB")


def cuda_flags(hardware: HardwareProfile) -> list[str]:
    """The pinned llama.cpp build's CMake flags for the GPUs present only (sm_NN)."""
    engine = next(e for e in load_catalog(catalog_dir()).engines if e.name == "llama.cpp")
    archs = sorted({a.arch for a in hardware.accelerators if a.arch})
    return llamacpp.cmake_flags(engine, "cuda", archs)


def randomise_routers(path: Path, tensors: list[TypedTensor], seed: int = 0) -> int:
    """Random f32 values in the MoE router tensors of a shape-only file (zero routers send
    every token to the same experts; real ones spread them). Returns tensors filled."""
    offsets = []
    offset = 0
    for t in tensors:
        offsets.append(offset)
        offset += (t.nbytes + ALIGN - 1) // ALIGN * ALIGN
    data_start = path.stat().st_size - offset
    rng = random.Random(seed)
    filled = 0
    with path.open("r+b") as fh:
        for t, at in zip(tensors, offsets, strict=True):
            if not ROUTER.search(t.name) or t.type != "F32":
                continue
            count = t.nbytes // 4
            fh.seek(data_start + at)
            fh.write(struct.pack(f"<{count}f", *(rng.gauss(0.0, 1.0) for _ in range(count))))
            filled += 1
    return filled


def _save(out: Path, report: dict[str, Any]) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)


def _bench(binary: Path, model: Path) -> list[dict[str, Any]]:
    argv = [str(binary / "llama-bench"), "-m", str(model), "-p", "512", "-n", "64",
            "-d", ",".join(map(str, DEPTHS)), "-ngl", "99", "-fa", "on", "-r", "2",
            "-lm", "none", "-o", "jsonl"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    if not rows:
        raise RuntimeError(f"llama-bench gave nothing: {proc.stderr[-600:]}")
    return [{"test": "pp" if int(r["n_prompt"]) else "tg", "depth": int(r["n_depth"]),
             "tps": r["avg_ts"], "std": r.get("stddev_ts")} for r in rows]  # fmt: skip


def _fit_params(binary: Path, model: Path, ctx: int) -> dict[str, float]:
    argv = [str(binary / "llama-fit-params"), "-m", str(model), "-c", str(ctx), "-ngl", "99",
            "-fa", "on", "--fit-print", "on", "-lv", "4"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    found: dict[str, float] = {}
    for device, kind, mib in _MIB.findall(proc.stderr + proc.stdout):
        found[f"{device} {kind}"] = float(mib)  # the last reserve of each buffer wins
    return found


def _ours(path: Path, depth: int, ctx: int, hw: HardwareProfile, cat: EstimateCatalog) -> Any:
    request = EstimateRequest(model="", quant="", gguf_path=str(path), ctx=ctx, depth=depth,
                              backend="cuda", ngl=99)  # fmt: skip
    e = estimate(request, hw, catalog=cat)
    return {"tg": e.speed.tg_tps, "tg_range": e.speed.tg_tps_range, "pp": e.speed.pp_tps,
            "pp_range": e.speed.pp_tps_range,
            "devices": {d.device: {"weights": d.weights_bytes / 2**20, "kv": d.kv_bytes / 2**20,
                                   "compute": d.compute_bytes / 2**20}
                        for d in e.memory.devices}}  # fmt: skip


def run(binary: Path, work: Path, out: Path) -> dict[str, Any]:
    hardware = detect_hardware(LiveRunner())
    cat = load_estimate_catalog(catalog_dir())
    report: dict[str, Any] = {"gpus": [a.name for a in hardware.accelerators], "models": []}
    report["build_flags"] = cuda_flags(hardware)
    _save(out, report)
    work.mkdir(parents=True, exist_ok=True)
    ctx = max(DEPTHS) + 1024
    for family, model_id, quant in MODELS:
        path = work / f"{model_id}-{quant}.shape.gguf"
        entry: dict[str, Any] = {"family": family, "model": model_id, "quant": quant}
        report["models"].append(entry)
        try:
            _, tensors = write_catalog_shape(path, model_id, quant, cat)
            entry["routers_randomised"] = randomise_routers(path, tensors)
            start = time.monotonic()
            entry["llama_bench"] = _bench(binary, path)
            entry["bench_s"] = round(time.monotonic() - start, 1)
            _save(out, report)
            entry["fit_params_mib"] = _fit_params(binary, path, ctx)
            _save(out, report)
            entry["estimate"] = {str(d): _ours(path, d, ctx, hardware, cat) for d in DEPTHS}
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            _save(out, report)
            path.unlink(missing_ok=True)  # sparse, but not on every filesystem
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("flags", help="print the CMake flags for the GPUs present")
    go = sub.add_parser("run", help="shape files, llama-bench, llama-fit-params, estimate")
    go.add_argument("--bin", type=Path, required=True)
    go.add_argument("--work", type=Path, required=True)
    go.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "flags":
        print(" ".join(cuda_flags(detect_hardware(LiveRunner()))))
        return 0
    report = run(args.bin, args.work, args.out)
    for m in report["models"]:
        print(m["family"], m["model"], m.get("error") or "")
        for row in m.get("llama_bench", []):
            ours = m.get("estimate", {}).get(str(row["depth"]), {})
            test = row["test"]
            print(f"  {test}@d{row['depth']}: measured {row['tps']:.1f}, "
                  f"estimate {ours.get(test)} {ours.get(test + '_range')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
