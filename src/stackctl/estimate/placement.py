"""Which device holds each tensor, KV layer and buffer: llama.cpp's placement rules.

llama.cpp (src/llama-model.cpp, b11434): the input embedding stays on the CPU; with
`-ngl N` the last N repeating layers go to the GPUs (N > n_layer also moves the output
layer); layers are split over GPUs by the cumulative `tensor_split` fractions (default: by
free memory); `--n-cpu-moe N` keeps the expert tensors of the first N layers in system
memory and `--cpu-moe` all of them; a layer's KV cache lives with the layer (`-kvo` default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackctl.estimate.recipe import TypedTensor


@dataclass
class Device:
    name: str  # gpu0, gpu1, ..., host
    budget: int | None
    backend: str  # cpu, cuda, rocm, vulkan, metal
    bandwidth_gbps: float | None
    peak_gops: float | None
    unified: bool = False
    weights: int = 0
    kv: int = 0
    state: int = 0
    compute: int = 0
    output: int = 0
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


def place_tensor(tensor: TypedTensor, placement: Placement, cpu: int, *, cpu_moe: bool) -> int:
    """Device index of one weight tensor."""
    layer = tensor.layer
    if tensor.name == "token_embd.weight":
        return cpu
    if layer is None:
        return placement.output_device
    if layer >= len(placement.layer_device):
        return placement.output_device  # nextn/MTP blocks ride with the output layer
    if tensor.is_expert and (cpu_moe or layer < placement.n_cpu_moe):
        return cpu
    return placement.layer_device[layer]
