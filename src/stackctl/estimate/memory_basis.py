"""The memory lines of an estimate's basis: what each buffer rests on, and unchecked fits."""

from __future__ import annotations

from stackctl.estimate.buffers import context_params
from stackctl.estimate.view import ModelView
from stackctl.models.estimate import DeviceMemory, EstimateRequest


def budget_basis(rows: list[DeviceMemory]) -> list[str]:
    """Say so when a device has no budget: its fit was not checked."""
    unknown = [r.device for r in rows if r.budget_bytes is None]
    if not unknown:
        return []
    return [
        f"fit: no memory budget known for {', '.join(unknown)} (declare the memory, e.g. "
        "--ram, or use a profile): 'fits' was not checked there"
    ]


def _compute_basis(request: EstimateRequest, view: ModelView) -> str:
    line = (
        "compute: CPU formula fitted to llama-fit-params b11434 (tests/data/estimate/"
        "fit_params_cpu.json: median 1.5 %, worst 3.2 % off; MLA models 3.5-17 % off)"
    )
    if view.shape.arch in ("deepseek2", "glm-dsa", "deepseek32"):
        line += "; this is an MLA model: expect the buffer to be larger than shown"
    if request.backend != "cpu":
        line = (
            f"compute: {request.backend}: GPU formula, KQ mask + max(logits + 1 row, KQ scores "
            "without flash attention + FFN + 1.31 rows) per device, fitted to llama.cpp's "
            "printed buffers (benchmarks/gpu_compute_vs_logs.py: 24 public CUDA/Metal log "
            "rows, median 2.0 %, worst 6.1 %, the mask counted in both sets on purpose: over, "
            "not under; none from Vulkan, none of a hybrid or MLA model); the host holds the "
            "graph inputs (embeddings + f32 mask) when every layer is on a GPU, else the "
            f"{line.removeprefix('compute: ')}"
        )
    return line


def memory_basis(request: EstimateRequest, view: ModelView) -> list[str]:
    params = context_params(request)
    swa = " (SWA full)" if params.swa_full else ""
    lines = [
        f"kv: llama.cpp layout, ctx {request.ctx} padded to 256, {request.parallel} seq, "
        f"K {params.type_k} / V {params.type_v}, window {view.shape.swa_window or 'none'}{swa}",
        _compute_basis(request, view),
        "output: n_vocab x 4 bytes per sequence (logits buffer)",
    ]
    if view.shape.is_recurrent:
        lines.append("state: f32 conv + recurrent state per sequence (llama_memory_recurrent)")
    if request.spec_type != "mtp" and _has_mtp(view):
        lines.append("mtp: nextn layers not loaded (no --spec-type mtp)")
    return lines


def _has_mtp(view: ModelView) -> bool:
    known: bool | None = view.derived.get("has_mtp")
    if known is None:
        known = view.derived["has_mtp"] = any(t.mtp for t in view.tensors)
    return known
