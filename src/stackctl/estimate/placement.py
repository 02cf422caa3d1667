"""Which device holds each tensor, KV layer and buffer: llama.cpp's placement rules.

llama.cpp (src/llama-model.cpp, b11434): the input embedding stays on the CPU; with
`-ngl N` the last N repeating layers go to the GPUs (N > n_layer also moves the output
layer); layers are split over GPUs by the cumulative `tensor_split` fractions (default: by
free memory); `--n-cpu-moe N` keeps the expert tensors of the first N layers in system
memory and `--cpu-moe` all of them; a layer's KV cache lives with the layer (`-kvo` default).
`-ot regex=BUFFER` entries are tried in order before those rules (common/arg.cpp appends the
--n-cpu-moe/--cpu-moe patterns after the user's, so an earlier `-ot` wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stackctl.errors import EstimateError
from stackctl.estimate.catalog import DotPath
from stackctl.estimate.recipe import TypedTensor

# llama.cpp -ngl for every repeating layer and the output on the GPUs ("all layers")
ALL_LAYERS = 999
# ggml backend buffer names per backend (ggml-cuda "CUDA%d", ggml-hip "ROCm%d", "Vulkan%d",
# Metal "MTL%d"); CPU_REPACK and CPU_Mapped are host buffers.
_GPU_BUFFER = re.compile(r"^(?:CUDA|ROCm|Vulkan|MTL|Metal)(\d*)$", re.IGNORECASE)


@dataclass
class Device:
    name: str  # gpu0, gpu1, ..., host
    budget: int | None
    backend: str  # cpu, cuda, rocm, vulkan, metal
    bandwidth_gbps: float | None
    peak_gops: float | None
    unified: bool = False
    bandwidth_assumed: bool = False
    bandwidth_measured: bool = False
    dot_path: DotPath = ""  # a CPU's quantised dot products: VNNI, AMX (devices.dot_path)
    bandwidth_span: tuple[float, float] = (1.0, 1.0)  # (low, high) multipliers
    peak_span: tuple[float, float] = (1.0, 1.0)
    ceiling_gops: float | None = None  # the most ops/s any kernel path reaches (None: peak)
    staging_gbps: float | None = None  # host: its staging copy's rate (devices.staging_gbps)
    threads: int = 0  # host: the threads its matmuls run on
    clock_ghz: float | None = None  # a GPU's boost clock (None: not known)
    rate_notes: list[str] = field(default_factory=list)  # where an unknown figure came from
    link: tuple[float, str] | None = None  # a GPU's host link: (GB/s per direction, basis)
    weights: int = 0
    kv: int = 0
    state: int = 0
    compute: int = 0
    output: int = 0
    draft: int = 0  # of the above, what the draft model / MTP head adds
    mmproj: int = 0  # of the above, projector weights
    layers: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.state + self.compute + self.output


@dataclass(frozen=True)
class Placement:
    ngl: int
    n_cpu_moe: int
    layer_device: list[int]  # per trunk layer: index into the device list
    output_device: int
    overrides: tuple[tuple[re.Pattern[str], int], ...] = ()


def split_layers(
    n_layer: int, ngl: int, gpu_budgets: list[int], split: list[float] | None
) -> list[int]:
    """Device index per layer: CPU (= len(gpu_budgets)) for the first n_layer-ngl layers."""
    n_gpu = len(gpu_budgets)
    cpu = n_gpu
    if n_gpu == 0 or ngl <= 0:
        return [cpu] * n_layer
    weights = split or [float(max(b, 1)) for b in gpu_budgets]
    total = sum(weights)
    cumulative = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    on_gpu = min(ngl, n_layer)
    first = n_layer - on_gpu
    result = []
    for il in range(n_layer):
        if il < first:
            result.append(cpu)
            continue
        frac = (il - first) / on_gpu
        result.append(next(i for i, c in enumerate(cumulative) if frac < c - 1e-9))
    return result


def parse_overrides(entries: list[str], n_gpu: int) -> tuple[tuple[re.Pattern[str], int], ...]:
    """`-ot` entries ('regex=BUFFER', comma lists allowed) as (pattern, device index)."""
    result = []
    for entry in (part for item in entries for part in item.split(",") if part):
        pattern, sep, buffer = entry.rpartition("=")
        if not sep or not pattern:
            raise EstimateError(f"-ot '{entry}': expected <tensor name regex>=<buffer type>")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise EstimateError(f"-ot '{entry}': bad regex: {exc}") from None
        result.append((compiled, _buffer_device(buffer, n_gpu, entry)))
    return tuple(result)


def _buffer_device(buffer: str, n_gpu: int, entry: str) -> int:
    if buffer.upper() in ("CPU", "CPU_REPACK", "CPU_MAPPED"):
        return n_gpu
    match = _GPU_BUFFER.match(buffer)
    index = int(match.group(1) or 0) if match else -1
    if not 0 <= index < n_gpu:
        known = ", ".join(["CPU", *(f"GPU buffer {i}" for i in range(n_gpu))])
        raise EstimateError(
            f"-ot '{entry}': unknown buffer type '{buffer}'", hint=f"known: {known}"
        )
    return index


# What places a weight tensor once no `-ot` pattern took it: (is it token_embd, its layer, is
# it a routed expert). Tensors sharing a key share a device, so a pass over a view's tensors
# can place each key once instead of each tensor.
PlaceKey = tuple[bool, int | None, bool]


def place_key(tensor: TypedTensor) -> PlaceKey:
    return tensor.name == "token_embd.weight", tensor.layer, tensor.is_expert


def place_tensor(tensor: TypedTensor, placement: Placement, cpu: int, *, cpu_moe: bool) -> int:
    """Device index of one weight tensor."""
    for pattern, device in placement.overrides:
        if pattern.search(tensor.name):
            return device
    return place_by_key(place_key(tensor), placement, cpu, cpu_moe=cpu_moe)


def place_by_key(key: PlaceKey, placement: Placement, cpu: int, *, cpu_moe: bool) -> int:
    """Device index of a weight tensor with this key, `-ot` patterns aside."""
    token_embd, layer, is_expert = key
    if token_embd:
        return cpu
    if layer is None:
        return placement.output_device
    if layer >= len(placement.layer_device):
        return placement.output_device  # nextn/MTP blocks ride with the output layer
    if is_expert and (cpu_moe or layer < placement.n_cpu_moe):
        return cpu
    return placement.layer_device[layer]
