"""Memory estimate vs llama.cpp's own accounting (llama-fit-params), CPU backend.

For each case: write a shape-only sparse GGUF of a catalog model, run
`llama-fit-params -lv 5 --fit-print on` on it, parse the model / context / compute breakdown
(2-decimal KV and compute sizes of the trace log; the integer-MiB breakdown table for model), and
compare with `estimate()` on the same file. Also checks the real Gemma 3 270M file when present.

    STACKCTL_LLAMA_BIN=/path/to/bin .venv/bin/python benchmarks/memory_vs_fit_params.py [--json OUT]

Targets: model within 1 %, context within 2 %, total within 3 %.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.catalog import EstimateCatalog
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.models.estimate import CacheType, EstimateRequest
from stackctl.models.hardware import CpuInfo, HardwareProfile, MemoryInfo, OsInfo
from stackctl.resources import catalog_dir

REAL_GEMMA = Path("/var/cache/stackctl/mirror/gemma-3-270m-q4_k_m.gguf")
MIB = 1 << 20
# (model id, quant, ctx, cache type K, cache type V, parallel)
CASES: list[tuple[str, str, int, str, str, int]] = [
    ("llama-3.2-1b", "Q4_K_M", 4096, "f16", "f16", 1),
    ("llama-3.2-1b", "Q8_0", 32768, "q8_0", "q8_0", 1),
    ("llama-3.1-8b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("qwen3-0.6b", "Q8_0", 16384, "q4_0", "q4_0", 2),
    ("qwen3-8b", "Q4_K_M", 4096, "f16", "f16", 4),
    ("qwen3-30b-a3b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("gemma-3-270m", "Q4_K_M", 8192, "f16", "f16", 1),
    ("gemma-3-4b", "Q4_K_M", 32768, "q8_0", "q8_0", 1),
    ("gemma-3-27b", "Q4_K_M", 16384, "f16", "f16", 2),
    ("gpt-oss-20b", "MXFP4_MOE", 16384, "f16", "f16", 1),
    ("lfm2-1.2b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("lfm2-8b-a1b", "Q4_K_M", 4096, "f16", "f16", 1),
    ("qwen3.6-27b", "Q4_K_M", 16384, "f16", "f16", 1),
    ("qwen3.6-35b-a3b", "Q4_K_M", 32768, "q8_0", "q8_0", 2),
    ("nemotron-3-nano-30b-a3b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("deepseek-v3", "IQ2_XXS", 4096, "f16", "f16", 1),
    ("glm-4.5-air", "Q4_K_M", 8192, "f16", "f16", 1),
    ("phi-4-mini", "Q4_K_M", 8192, "f16", "f16", 1),
    ("mistral-small-3.2-24b", "Q6_K", 8192, "f16", "f16", 1),
]

# -lv 5 lines: "llama_kv_cache: size = X MiB", "RS buffer size", "compute buffer size = X MiB",
# and the breakdown table rows "| - Host | self = model + context + compute |" (integer MiB).
_KV = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB")
_RS = re.compile(r"llama_memory_recurrent: size =\s+([\d.]+) MiB|RS buffer size =\s+([\d.]+) MiB")
_COMPUTE = re.compile(r"(\S+) compute buffer size =\s+([\d.]+) MiB")
_ROW = re.compile(r"\|\s+- (Host|CPU_\w+)\s+\|\s+\d+ =\s+(\d+) \+\s+(\d+) \+\s+(\d+)")


def host_profile() -> HardwareProfile:
    return HardwareProfile(
        name="bench-host",
        cpu=CpuInfo(arch="x86_64", cores=2, threads=2, flags=["avx2"]),
        memory=MemoryInfo(total_bytes=1 << 50, available_bytes=1 << 50),
        os=OsInfo(system="linux"),
    )


def parse_fit_log(text: str) -> dict[str, float]:
    """MiB per category from llama.cpp's -lv 5 log (2-decimal KV/compute, integer model)."""
    model = sum(float(m[1]) for m in _ROW.findall(text))
    kv = sum(float(v) for v in _KV.findall(text))
    rs = sum(float(a or b) for a, b in _RS.findall(text))
    compute: dict[str, float] = {}
    for name, mib in _COMPUTE.findall(text):
        compute[name] = float(mib)  # the last reserve of each buffer wins
    return {"model": model, "context": kv + rs, "compute": sum(compute.values()), "output": 0.0}


def run_fit(binary: Path, model: Path, ctx: int, ctk: str, ctv: str, np_: int) -> dict[str, float]:
    argv = [str(binary), "-m", str(model), "-c", str(ctx), "-ctk", ctk, "-ctv", ctv,
            "-np", str(np_), "-fa", "on", "--fit-print", "on", "-lv", "5", "-t", "2"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-800:]
        raise RuntimeError(f"llama-fit-params failed ({proc.returncode}): {tail}")
    return parse_fit_log(proc.stderr + proc.stdout)


def ours(
    path: Path, ctx: int, ctk: str, ctv: str, np_: int, cat: EstimateCatalog
) -> dict[str, float]:
    request = EstimateRequest(
        model="", quant="", ctx=ctx, cache_type_k=_cache(ctk), cache_type_v=_cache(ctv),
        parallel=np_, gguf_path=str(path), threads=2,
    )  # fmt: skip
    mem = estimate(request, host_profile(), catalog=cat).memory
    return {
        "model": mem.weights_bytes / MIB,
        "context": (mem.kv_bytes + mem.state_bytes) / MIB,
        "compute": mem.compute_bytes / MIB,
        "output": mem.output_bytes / MIB,
    }


def _cache(name: str) -> CacheType:
    allowed: dict[str, CacheType] = {"f16": "f16", "q8_0": "q8_0", "q4_0": "q4_0", "bf16": "bf16"}
    return allowed[name]


def _err(pred: float, real: float) -> float:
    return 0.0 if real == pred else abs(pred - real) / max(real, 1e-9) * 100


def _row(label: str, real: dict[str, float], pred: dict[str, float]) -> dict[str, Any]:
    total_r = real["model"] + real["context"] + real["compute"]
    total_p = pred["model"] + pred["context"] + pred["compute"]
    return {
        "case": label, "real": real, "pred": pred,
        "err_model": _err(pred["model"], real["model"]),
        "err_context": _err(pred["context"], real["context"]),
        "err_compute": _err(pred["compute"], real["compute"]),
        "err_total": _err(total_p, total_r),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--only", help="substring filter on model ids")
    args = parser.parse_args()
    if not args.bin or not (Path(args.bin) / "llama-fit-params").is_file():
        print("skip: set STACKCTL_LLAMA_BIN to a llama.cpp bin dir with llama-fit-params")
        return 0
    binary = Path(args.bin) / "llama-fit-params"
    cat = load_estimate_catalog(catalog_dir())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_id, quant, ctx, ctk, ctv, np_ in CASES:
            if args.only and args.only not in model_id:
                continue
            path = Path(tmp) / f"{model_id}-{quant}.gguf"
            write_catalog_shape(path, model_id, quant, cat)
            label = f"{model_id} {quant} c{ctx} {ctk}/{ctv} np{np_}"
            try:
                real = run_fit(binary, path, ctx, ctk, ctv, np_)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{label}: llama.cpp refused the shape file: {str(exc)[-300:]}")
                continue
            rows.append(_row(label, real, ours(path, ctx, ctk, ctv, np_, cat)))
            path.unlink()
    if REAL_GEMMA.is_file():
        for ctx in (4096, 32768):
            real = run_fit(binary, REAL_GEMMA, ctx, "f16", "f16", 1)
            rows.append(_row(f"REAL gemma-3-270m Q4_K_M c{ctx}", real,
                             ours(REAL_GEMMA, ctx, "f16", "f16", 1, cat)))  # fmt: skip
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'case':58} {'model MiB real/pred':>22} {'ctx MiB real/pred':>20} "
          f"{'compute real/pred':>20} {'err% m/ctx/tot':>16}")  # fmt: skip
    for r in rows:
        real, pred = r["real"], r["pred"]
        print(f"{r['case']:58} {real['model']:10.2f}/{pred['model']:<10.2f} "
              f"{real['context']:9.2f}/{pred['context']:<9.2f} "
              f"{real['compute']:9.2f}/{pred['compute']:<9.2f} "
              f"{r['err_model']:4.2f}/{r['err_context']:4.2f}/{r['err_total']:4.2f}")  # fmt: skip
    for key in ("err_model", "err_context", "err_compute", "err_total"):
        values = [r[key] for r in rows]
        if values:
            print(f"{key}: median {statistics.median(values):.3f} %  worst {max(values):.3f} %")


if __name__ == "__main__":
    sys.exit(main())
