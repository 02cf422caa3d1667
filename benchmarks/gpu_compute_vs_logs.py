"""GPU compute buffers: the CPU formula the estimator uses today vs the figures llama.cpp printed
in public logs (tests/data/speed/gpu_compute_buffers.yaml), and a GPU formula fitted to them.

Per ubatch of t tokens (t = min(n_ubatch, n_batch, n_ctx)), in MiB:
  logits  n_vocab x t x 4 (none for an embedding model: bert, jina-bert)
  rows    n_embd x t x 4
  ffn     n_ff x t x 4
  scores  n_head x n_ctx x t x 4 without flash attention (the KQ matrix, f32), else the f16 mask
The CPU formula (estimate/memory.py ComputeTerms, fitted to llama-fit-params on CPU) adds its
terms: logits + 6 rows + mask. The GPU graph allocator reuses buffers, so the GPU figure is the
larger of two live sets: the output (logits + 1 row) and the attention block (scores + ffn + m
rows), m fitted (median) on the entries where attention is the larger.

    .venv/bin/python benchmarks/gpu_compute_vs_logs.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from stackctl.yamlio import read_yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests/data/speed/gpu_compute_buffers.yaml"
MIB = float(1 << 20)
EMBEDDING_ARCHS = {"bert", "jina-bert-v2", "nomic-bert"}


def terms(e: dict[str, Any]) -> dict[str, float] | None:
    dims = e.get("dims") or {}
    vocab, embd, heads, ff = (dims.get(k) for k in ("n_vocab", "n_embd", "n_head", "n_ff"))
    if not (vocab and embd and heads and ff):
        return None
    ctx = int(e["n_ctx"])
    t = min(int(e["n_ubatch"]), int(e["n_batch"]), ctx)
    scores = heads * ctx * t * 4 if not e.get("flash_attn") else ctx * t * 2
    return {
        "logits": 0.0 if e.get("arch") in EMBEDDING_ARCHS else vocab * t * 4 / MIB,
        "rows": embd * t * 4 / MIB,
        "ffn": ff * t * 4 / MIB,
        "scores": scores / MIB,
        "mask": ctx * t * 2 / MIB,
    }


def cpu_formula(x: dict[str, float]) -> float:
    return x["logits"] + 6 * x["rows"] + x["mask"]


def gpu_formula(x: dict[str, float], m: float) -> float:
    return max(x["logits"] + x["rows"], x["scores"] + x["ffn"] + m * x["rows"])


def main() -> int:
    entries = read_yaml(DATA)["entries"]
    full = [e for e in entries if e.get("n_gpu_layers") in (None, 99, 999)]
    usable = [(e, x) for e in full if (x := terms(e)) is not None]
    attention = [(e, x) for e, x in usable
                 if x["scores"] + x["ffn"] > x["logits"] + x["rows"]]  # fmt: skip
    m = statistics.median(
        (float(e["compute_mib"]) - x["scores"] - x["ffn"]) / x["rows"] for e, x in attention
    )
    print(f"{len(entries)} log entries, {len(usable)} fully offloaded with dims; "
          f"attention block: scores + ffn + {m:.2f} rows (median of {len(attention)})")  # fmt: skip
    cpu_err, gpu_err = [], []
    for e, x in usable:
        got = float(e["compute_mib"])
        ours, fit = cpu_formula(x), gpu_formula(x, m)
        cpu_err.append(abs(ours / got - 1))
        gpu_err.append(abs(fit / got - 1))
        print(f"  {e['backend']:6} {e['model_name'][:28]:28} ctx {e['n_ctx']:5} ub "
              f"{e['n_ubatch']:4} fa {e.get('flash_attn')}: log {got:7.1f} MiB, CPU formula "
              f"{ours:7.1f} ({ours / got - 1:+.0%}), GPU formula {fit:7.1f} "
              f"({fit / got - 1:+.0%})")  # fmt: skip
    print(f"CPU formula on GPU logs: median {statistics.median(cpu_err):.1%}, "
          f"worst {max(cpu_err):.1%}")  # fmt: skip
    print(f"GPU formula:             median {statistics.median(gpu_err):.1%}, "
          f"worst {max(gpu_err):.1%} (one parameter fitted in sample)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
