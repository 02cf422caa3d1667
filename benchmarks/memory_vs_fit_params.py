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
from stackctl.estimate.hosts import cpu_host
from stackctl.estimate.recipe import TypedTensor
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.estimate.view import load_model_view
from stackctl.models.estimate import CacheType, EstimateRequest
from stackctl.resources import catalog_dir

REAL_GEMMA = Path("/var/cache/stackctl/mirror/gemma-3-270m-q4_k_m.gguf")
MIB = 1 << 20
# (model id, quant, ctx, cache type K, cache type V, parallel): 20 architectures, several
# contexts, cache types and sequence counts.
CASES: list[tuple[str, str, int, str, str, int]] = [
    ("llama-3.2-1b", "Q4_K_M", 4096, "f16", "f16", 1),
    ("llama-3.2-1b", "Q8_0", 32768, "q8_0", "q8_0", 1),
    ("llama-3.1-8b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("llama-3.1-8b", "Q4_K_M", 65536, "q4_0", "q4_0", 1),
    ("qwen3-0.6b", "Q8_0", 16384, "q4_0", "q4_0", 2),
    ("qwen3-8b", "Q4_K_M", 4096, "f16", "f16", 4),
    ("qwen3-30b-a3b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("qwen3-30b-a3b", "IQ2_XXS", 32768, "q8_0", "q8_0", 1),
    ("gemma-3-270m", "Q4_K_M", 8192, "f16", "f16", 1),
    ("gemma-3-4b", "Q4_K_M", 32768, "q8_0", "q8_0", 1),
    ("gemma-3-27b", "Q4_K_M", 16384, "f16", "f16", 2),
    ("gpt-oss-20b", "MXFP4_MOE", 16384, "f16", "f16", 1),
    ("gpt-oss-20b", "MXFP4_MOE", 131072, "q8_0", "q8_0", 1),
    ("gpt-oss-120b", "MXFP4_MOE", 32768, "f16", "f16", 2),
    ("lfm2-1.2b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("lfm2-8b-a1b", "Q4_K_M", 4096, "f16", "f16", 1),
    ("lfm2-8b-a1b", "Q8_0", 32768, "q8_0", "q8_0", 2),
    ("qwen3.6-27b", "Q4_K_M", 16384, "f16", "f16", 1),
    ("qwen3.6-27b", "Q4_K_M", 65536, "q8_0", "q8_0", 1),
    ("qwen3.6-35b-a3b", "Q4_K_M", 32768, "q8_0", "q8_0", 2),
    ("qwen3-next-80b-a3b", "Q4_K_M", 16384, "f16", "f16", 1),
    ("nemotron-3-nano-30b-a3b", "Q4_K_M", 8192, "f16", "f16", 1),
    ("nemotron-3-nano-30b-a3b", "Q4_K_M", 65536, "q8_0", "q8_0", 2),
    ("deepseek-v3", "IQ2_XXS", 4096, "f16", "f16", 1),
    ("deepseek-v3", "IQ2_XXS", 32768, "q8_0", "q8_0", 1),
    ("kimi-k2", "IQ2_XXS", 8192, "f16", "f16", 1),
    ("glm-4.5-air", "Q4_K_M", 8192, "f16", "f16", 1),
    ("glm-4.5-air", "Q4_K_M", 32768, "q8_0", "q8_0", 1),
    ("phi-4-mini", "Q4_K_M", 8192, "f16", "f16", 1),
    ("mistral-small-3.2-24b", "Q6_K", 8192, "f16", "f16", 1),
    ("gemma-4-31b", "Q4_K_M", 16384, "f16", "f16", 1),
    ("gemma-4-26b-a4b", "Q4_K_M", 32768, "q8_0", "q8_0", 1),
    ("gemma-4-e4b", "Q4_K_M", 32768, "f16", "f16", 1),
    ("gemma-4-e2b", "Q8_0", 8192, "q4_0", "q4_0", 2),
]

# -lv 5 lines: "llama_kv_cache: size = X MiB", "RS buffer size", "compute buffer size = X MiB",
# and the breakdown table rows "| - Host | self = model + context + compute |" (integer MiB).
_KV = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB")
_RS = re.compile(r"llama_memory_recurrent: size =\s+([\d.]+) MiB")
_COMPUTE = re.compile(r"(\S+) compute buffer size =\s+([\d.]+) MiB")
_ROW = re.compile(r"\|\s+- (Host|CPU_\w+)\s+\|\s+\d+ =\s+(\d+) \+\s+(\d+) \+\s+(\d+)")
# print_info: file size = X MiB|GiB: llama.cpp's sum of the file's tensor bytes (2 decimals).
_FILE = re.compile(r"print_info: file size\s+=\s+([\d.]+) (MiB|GiB)")


def parse_fit_log(text: str) -> dict[str, float]:
    """MiB per category from llama.cpp's -lv 5 log.

    The breakdown table gives the model buffers in whole MiB, each rounded down, so the true
    model size lies in [model, model + model_rows); KV, recurrent state and compute come from
    the 2-decimal trace lines; `file` is llama.cpp's own tensor byte count of the file.
    """
    rows = _ROW.findall(text)
    kv = sum(float(v) for v in _KV.findall(text))
    rs = sum(float(v) for v in _RS.findall(text))
    compute: dict[str, float] = {}
    for name, mib in _COMPUTE.findall(text):
        compute[name] = float(mib)  # the last reserve of each buffer wins
    file_mib = 0.0
    match = _FILE.search(text)
    if match:
        file_mib = float(match[1]) * (1024.0 if match[2] == "GiB" else 1.0)
    return {
        "model": float(sum(int(r[1]) for r in rows)),
        "model_rows": float(len(rows)),
        "file": file_mib,
        "file_step": 10.24 if match and match[2] == "GiB" else 0.01,
        "context": kv + rs,
        "compute": sum(compute.values()),
    }


_HOST = re.compile(r"^Host (\d+) (\d+) (\d+)", re.M)
ATTEMPTS = 3


def run_fit(binary: Path, model: Path, ctx: int, ctk: str, ctv: str, np_: int) -> dict[str, float]:
    """One llama-fit-params run, parsed; repeated when the log came back incomplete.

    llama.cpp's logger writes from a worker thread and can lose its last lines at exit (seen
    here: no breakdown table, so the model read as 0 MiB). A log is complete when it has the
    table, a compute line, and its Host row agrees with the Host line fit-params prints to
    stdout; otherwise the run is repeated, and after ATTEMPTS the case fails loudly.
    """
    argv = [str(binary), "-m", str(model), "-c", str(ctx), "-ctk", ctk, "-ctv", ctv,
            "-np", str(np_), "-fa", "on", "--fit-print", "on", "-lv", "5", "-t", "2"]  # fmt: skip
    for _ in range(ATTEMPTS):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-800:]
            raise RuntimeError(f"llama-fit-params failed ({proc.returncode}): {tail}")
        host = _HOST.search(proc.stdout)
        rows = {r[0]: int(r[1]) for r in _ROW.findall(proc.stderr)}
        if host and rows.get("Host") == int(host[1]) and _COMPUTE.search(proc.stderr):
            return parse_fit_log(proc.stderr)
    raise RuntimeError(f"llama-fit-params log incomplete {ATTEMPTS} times for {model.name}")


def ours(
    path: Path, ctx: int, ctk: str, ctv: str, np_: int, cat: EstimateCatalog
) -> dict[str, float]:
    request = EstimateRequest(
        model="", quant="", ctx=ctx, cache_type_k=_cache(ctk), cache_type_v=_cache(ctv),
        parallel=np_, gguf_path=str(path), threads=2,
    )  # fmt: skip
    mem = estimate(request, cpu_host(2, ["avx2"]), catalog=cat).memory
    return {
        "model": mem.weights_bytes / MIB,
        "file": sum(t.nbytes for t in read_view_tensors(path, cat)) / MIB,
        "context": (mem.kv_bytes + mem.state_bytes) / MIB,
        "compute": mem.compute_bytes / MIB,
        "output": mem.output_bytes / MIB,
    }


def read_view_tensors(path: Path, cat: EstimateCatalog) -> list[TypedTensor]:
    """Every tensor of the file, MTP blocks included (what llama.cpp's file size counts)."""
    request = EstimateRequest(model="", quant="", gguf_path=str(path))
    return load_model_view(request, cat).tensors


def _cache(name: str) -> CacheType:
    allowed: dict[str, CacheType] = {"f16": "f16", "q8_0": "q8_0", "q4_0": "q4_0", "bf16": "bf16"}
    return allowed[name]


def _err(pred: float, real: float) -> float:
    return 0.0 if real == pred else abs(pred - real) / max(real, 1e-9) * 100


def _err_interval(pred: float, low: float, high: float) -> float:
    """0 inside [low, high), else the distance to the interval relative to it."""
    if low <= pred < high:
        return 0.0
    edge = low if pred < low else high
    return abs(pred - edge) / max(low, 1e-9) * 100


def _row(label: str, real: dict[str, float], pred: dict[str, float]) -> dict[str, Any]:
    high = real["model"] + real["model_rows"]
    model_mid = (real["model"] + high) / 2
    total_r = model_mid + real["context"] + real["compute"]
    total_p = pred["model"] + pred["context"] + pred["compute"]
    file_err = _err_interval(
        pred["file"], real["file"] - real["file_step"] / 2, real["file"] + real["file_step"] / 2
    )
    return {
        "case": label, "real": real, "pred": pred,
        "err_model": _err_interval(pred["model"], real["model"], high),
        "err_file": file_err,
        "err_context": _err(pred["context"], real["context"]),
        "err_compute": _err(pred["compute"], real["compute"]),
        "err_total": _err(total_p, total_r),
    }  # fmt: skip


def run_cases(
    binary: Path, cat: EstimateCatalog, only: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    refused: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_id, quant, ctx, ctk, ctv, np_ in CASES:
            if only and only not in model_id:
                continue
            path = Path(tmp) / f"{model_id}-{quant}.gguf"
            write_catalog_shape(path, model_id, quant, cat)
            label = f"{model_id} {quant} c{ctx} {ctk}/{ctv} np{np_}"
            try:
                real = run_fit(binary, path, ctx, ctk, ctv, np_)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                refused.append(f"{label}: llama.cpp refused the shape file: {str(exc)[-300:]}")
                continue
            row = _row(label, real, ours(path, ctx, ctk, ctv, np_, cat))
            rows.append({**row, "arch": cat.models[model_id].gguf_arch})
            path.unlink()
    if REAL_GEMMA.is_file() and not only:
        for ctx, cache in ((4096, "f16"), (32768, "f16"), (32768, "q8_0")):
            real = run_fit(binary, REAL_GEMMA, ctx, cache, cache, 1)
            pred = ours(REAL_GEMMA, ctx, cache, cache, 1, cat)
            label = f"REAL gemma-3-270m Q4_K_M c{ctx} {cache}/{cache} np1"
            rows.append({**_row(label, real, pred), "arch": "gemma3"})
    return rows, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("STACKCTL_LLAMA_BIN"))
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--only", help="substring filter on model ids")
    args = parser.parse_args()
    if not args.bin or not (Path(args.bin) / "llama-fit-params").is_file():
        print("skip: set STACKCTL_LLAMA_BIN to a llama.cpp bin dir with llama-fit-params")
        return 0
    cat = load_estimate_catalog(catalog_dir())
    rows, refused = run_cases(Path(args.bin) / "llama-fit-params", cat, args.only)
    print_table(rows)
    for line in refused:
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 1 if refused else 0


TARGETS = {"err_model": 1.0, "err_context": 2.0, "err_total": 3.0}


def print_table(rows: list[dict[str, Any]]) -> None:
    print("model: llama.cpp's breakdown table rounds each buffer down to whole MiB, so 'real'")
    print("is the interval [sum, sum + buffers) and the error is the distance from it; 'file'")
    print("checks every tensor (MTP included) against llama.cpp's 2-decimal file size.")
    print(f"{'case':52} {'model MiB real/pred':>24} {'ctx MiB real/pred':>20} "
          f"{'compute real/pred':>19} {'err% m/file/ctx/cmp/tot':>24}")  # fmt: skip
    for r in rows:
        real, pred = r["real"], r["pred"]
        hi = real["model"] + real["model_rows"]
        model_real = f"{real['model']:.0f}-{hi:.0f}"
        print(f"{r['case']:52} {model_real:>13}/{pred['model']:<10.2f} "
              f"{real['context']:9.2f}/{pred['context']:<9.2f} "
              f"{real['compute']:8.2f}/{pred['compute']:<8.2f}  "
              f"{r['err_model']:4.2f}/{r['err_file']:4.2f}/{r['err_context']:4.2f}/"
              f"{r['err_compute']:5.2f}/{r['err_total']:4.2f}")  # fmt: skip
    print(f"{len(rows)} cases, {len({r['arch'] for r in rows})} architectures")
    for key in ("err_model", "err_file", "err_context", "err_compute", "err_total"):
        values = [r[key] for r in rows]
        if not values:
            continue
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            verdict = f"  target {target:.0f} %: {'met' if max(values) <= target else 'MISSED'}"
        print(f"{key:12} median {statistics.median(values):.3f} %  "
              f"worst {max(values):.3f} %{verdict}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
