"""GPU compute buffers: the estimator's GPU formula (estimate/gpu_buffers.py) and the CPU formula
it replaced on GPU backends, against the figures llama.cpp printed in public logs:
tests/data/speed/gpu_compute_buffers.yaml (ggml-org/ci, CUDA V100 and Metal M4) and
tests/data/estimate/gpu_compute_issue_logs.yaml (logs posted in issues and pull requests).

Per row: the logged GPU compute buffer, the CPU formula, the GPU formula; the logged host-side
buffer and the host formula (inputs only, nothing fitted). Then the median and worst error of
each, and for the one fitted number (attn_rows, the median over the rows where the attention set
is the larger) its value and the leave-one-out error of those rows: fit without the row,
predict it.

    .venv/bin/python benchmarks/gpu_compute_vs_logs.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from stackctl.estimate.gpu_buffers import (
    GPU_COMPUTE,
    GpuComputeTerms,
    gpu_compute_bytes,
    host_compute_bytes,
    mask_cells,
    ubatch_tokens,
)
from stackctl.estimate.memory import F32, ComputeTerms, ContextParams, compute_bytes
from stackctl.estimate.shape import LayerShape, ModelShape
from stackctl.yamlio import read_yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = [
    ROOT / "tests/data/speed/gpu_compute_buffers.yaml",
    ROOT / "tests/data/estimate/gpu_compute_issue_logs.yaml",
]
MIB = float(1 << 20)
# embedding models reserve no logits (pooling): the output set is the row alone
EMBEDDING_ARCHS = {"bert", "jina-bert-v2", "nomic-bert"}


def shape_of(e: dict[str, Any]) -> ModelShape | None:
    dims = e.get("dims") or {}
    need = ("n_vocab", "n_embd", "n_head", "n_ff", "n_layer")
    if not all(dims.get(k) for k in need):
        return None
    head = dims["n_embd"] // dims["n_head"]
    kv = (dims.get("n_head_kv") or dims["n_head"]) * head
    layer = LayerShape(kind="A", kv_k=kv, kv_v=kv, n_head=dims["n_head"], head_k=head)
    vocab = 0 if e.get("arch") in EMBEDDING_ARCHS else dims["n_vocab"]
    return ModelShape(e.get("arch", "?"), dims["n_embd"], vocab, int(e["n_ctx"]),
                      [layer] * dims["n_layer"])  # fmt: skip


def params_of(e: dict[str, Any]) -> ContextParams:
    fa = bool(e.get("flash_attn"))
    return ContextParams(n_ctx=int(e["n_ctx"]), n_ubatch=int(e["n_ubatch"]),
                         n_batch=int(e["n_batch"]), flash_attn=fa)  # fmt: skip


def attention_rows(shape: ModelShape, params: ContextParams, ffn: int, logged: float) -> float:
    """The attn_rows that makes the attention set equal the logged buffer."""
    zero = gpu_compute_bytes(shape, params, ffn, GpuComputeTerms(attn_rows=0.0))
    row = shape.n_embd * ubatch_tokens(params) * F32
    return (logged * MIB - zero) / row


def attention_wins(shape: ModelShape, params: ContextParams, ffn: int) -> bool:
    t = ubatch_tokens(params)
    cells = mask_cells(shape, params)
    mask = cells * t * (2 if params.flash_attn else F32)
    output = (shape.n_vocab + shape.n_embd) * t * F32 + mask
    return gpu_compute_bytes(shape, params, ffn, GpuComputeTerms(attn_rows=0.0)) > output


def _err(pred: float, got: float) -> float:
    return pred / got - 1


def main() -> int:
    rows: list[tuple[dict[str, Any], ModelShape, ContextParams]] = []
    total = 0
    for path in DATA:
        for e in read_yaml(path)["entries"]:
            total += 1
            shape = shape_of(e)
            if shape is not None and e.get("n_gpu_layers") in (None, 99, 999):
                rows.append((e, shape, params_of(e)))
    fit = [(e, s, p) for e, s, p in rows if attention_wins(s, p, e["dims"]["n_ff"])]
    ms = [attention_rows(s, p, e["dims"]["n_ff"], float(e["compute_mib"])) for e, s, p in fit]
    print(f"{total} log entries, {len(rows)} with every layer on the GPU and the model's dims; "
          f"attention set the larger on {len(fit)}: attn_rows median {statistics.median(ms):.2f} "
          f"(estimator uses {GPU_COMPUTE.attn_rows})")  # fmt: skip
    cpu_err, gpu_err, host_err = [], [], []
    for e, shape, params in rows:
        got = float(e["compute_mib"])
        ffn = e["dims"]["n_ff"]
        cpu = compute_bytes(shape, params, ComputeTerms()) / MIB
        gpu = gpu_compute_bytes(shape, params, ffn) / MIB
        cpu_err.append(abs(_err(cpu, got)))
        gpu_err.append(abs(_err(gpu, got)))
        host = ""
        if e.get("host_compute_mib"):
            h_got = float(e["host_compute_mib"])
            h = host_compute_bytes(shape, params) / MIB
            host_err.append(abs(_err(h, h_got)))
            host = f" | host log {h_got:7.2f}, formula {h:7.2f} ({_err(h, h_got):+.1%})"
        print(f"  {e['backend']:6} {e['model_name'][:26]:26} ctx {e['n_ctx']:5} ub "
              f"{e['n_ubatch']:4} fa {int(bool(e.get('flash_attn')))}: log {got:7.1f}, CPU "
              f"{cpu:7.1f} ({_err(cpu, got):+.0%}), GPU {gpu:7.1f} ({_err(gpu, got):+.1%})"
              f"{host}  [{e['source']}]")  # fmt: skip
    loo = []
    for i, (e, s, p) in enumerate(fit):
        m = statistics.median(ms[:i] + ms[i + 1 :]) if len(ms) > 1 else ms[0]
        pred = gpu_compute_bytes(s, p, e["dims"]["n_ff"], GpuComputeTerms(attn_rows=m)) / MIB
        loo.append(abs(_err(pred, float(e["compute_mib"]))))
    print(f"CPU formula on GPU logs: median {statistics.median(cpu_err):.1%}, "
          f"worst {max(cpu_err):.1%} over {len(cpu_err)} rows")  # fmt: skip
    print(f"GPU formula:             median {statistics.median(gpu_err):.1%}, "
          f"worst {max(gpu_err):.1%} over {len(gpu_err)} rows")  # fmt: skip
    if loo:
        print(f"  leave-one-out on the {len(loo)} attention-set rows (attn_rows refitted without "
              f"the row): median {statistics.median(loo):.1%}, worst {max(loo):.1%}")  # fmt: skip
    if host_err:
        print(f"host formula (inputs: embeddings + f32 mask, nothing fitted): median "
              f"{statistics.median(host_err):.1%}, worst {max(host_err):.1%} over "
              f"{len(host_err)} rows")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
