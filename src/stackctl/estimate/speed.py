"""Roofline decode/prefill speed with ranges and the basis of every figure.

A token's time on a device is a weight phase plus an attention phase, run one after the
other (llama.cpp's graph does the matmuls and the attention as separate kernels):

- weights: the active weights (dense tensors, the output matrix, the used share of the
  experts) over bandwidth x efficiency in decode, bounded below by 2 ops per weight over peak;
  in prefill, those ops over peak x prefill efficiency.
- attention: the cells a layer attends to at `depth` (full attention: every cached token;
  sliding window: at most the window; recurrent layers: a fixed state read and written) as
  bytes over bandwidth, plus in decode the attention ops over peak x the attention
  efficiency, which is low and its own figure: one query row per step, f16/f32 arithmetic
  rather than the quantised dot products the peak is quoted for. With one query row the
  kernel has too little work in flight to hide the arithmetic behind the read, so the two add
  (on the public rows this beats the larger of the two: benchmarks/speed_vs_public.py).
  In prefill, flash attention also streams the attended cache once per tile of query rows: a
  fitted number of passes (about 1 / rows per tile) x the KV bytes, over bandwidth. It is why a
  model with one KV head per query head (Llama 2) slows with depth faster than its ops alone say.

The decode weight read depends on how the weights are stored: a K-quant's super-blocks take
more unpacking per byte than Q4_0/Q8_0's plain blocks, an IQ type looks its values up in a
grid, MXFP4 decodes an E2M1 nibble through a table, and a BF16 matrix on a GPU without bf16
arithmetic is converted on the fly; with one token per step the dequantisation is not all
hidden behind the read. Each backend may carry a time multiplier per quant family
(`quant_family`; 1 = the backend's figure, never below: no kernel beats the backend's best),
applied to the share of the bytes read stored in that family (catalog/speed_fit.yaml).

Efficiencies and their spread come from catalog/backends.yaml.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import get_args

from stackctl.estimate.catalog import BackendCatalog, BackendFactors, DotPath, QuantFamily
from stackctl.estimate.expert_tiles import tile_padding
from stackctl.estimate.recipe import TypedTensor
from stackctl.estimate.shape import ModelShape
from stackctl.estimate.validation import widen
from stackctl.models.estimate import SpeedEstimate

TTFT_PROMPT = 512
GB = 1e9

QUANT_FAMILIES: tuple[str, ...] = get_args(QuantFamily)


@functools.cache
def quant_family(ggml_type: str) -> str:
    """The kernel family of a ggml tensor type: Q4_K -> kquant, IQ4_XS -> iquant, ..."""
    t = ggml_type.upper()
    if t in ("F16", "BF16", "F32"):
        return t.lower()
    if t in ("MXFP4", "NVFP4"):
        return "fp4"
    if t.startswith(("IQ", "TQ")):
        return "iquant"
    if t.endswith("_K"):
        return "kquant"
    if t.startswith("Q"):
        return "legacy"
    return "f32"  # F64, I8..I64: plain values


def _mix(shares: Mapping[str, float], factors: Mapping[str, float]) -> float:
    """The time multiplier of weights split by family as `shares`, under per-family `factors`."""
    total = sum(shares.values())
    if not total or not factors:
        return 1.0
    return sum(v * factors.get(f, 1.0) for f, v in shares.items()) / total


@dataclass(frozen=True)
class Efficiency:
    """Share of a device's roofline reached: by the weight phase and by the attention phase."""

    weights: float  # decode: share of bandwidth; prefill: share of peak ops
    attention: float  # share of peak ops the attention kernels reach
    kv: float = 1.0  # decode: share of bandwidth reached reading the KV cache
    experts: float | None = None  # prefill: share of peak for expert matmuls (None: weights)
    layer_s: float = 0.0  # decode: fixed seconds per layer per token (launches, syncs), at
    # REFERENCE_CLOCK_GHZ (DeviceSpeed.layer_scale)
    expert_s: float = 0.0  # decode: fixed seconds per routed expert a token uses, per layer
    quant: Mapping[str, float] = field(default_factory=dict)  # decode: time x per quant family
    kv_passes: float = 0.0  # prefill: times each prompt token's attended KV bytes are read
    dot: float = 1.0  # decode: multiplier of a CPU's dot-product rates (DeviceSpeed.dot_gws)
    scan_s: float = 0.0  # prefill: seconds per prompt token per recurrent layer (SCAN_NOTE)
    offload: float | None = None  # decode: share of bandwidth offloaded experts read at


# Prefill of a recurrent layer is not a matmul: b11434's fused Gated DeltaNet op (llama.cpp
# enables it for prompts since PR #20340, 2026-03-10) runs one step per prompt token, each on
# the state the step before left, in every backend's kernel (ggml-cuda gated_delta_net.cu, whose
# "TODO: Add chunked kernel for even faster pre-fill" llama.cpp issue #22967 quotes; the
# Vulkan, SYCL and Metal kernels loop over the tokens too). A step waits on its loads and two
# reductions, not on the GPU's throughput, so its cost is a fixed time per token and layer that
# no ubatch amortises: fitted per backend (catalog/speed_fit.yaml scan_step_us), at
# REFERENCE_CLOCK_GHZ like decode's time per layer.
SCAN_NOTE = "llama.cpp's fused Gated DeltaNet scans the state one prompt token at a time"

# The GPU clock at which catalog/speed_fit.yaml states decode's fixed time per layer
# (layer_overhead_ms): a unit, near the middle of the fitted cards' boost clocks (1.3-3.0 GHz).
REFERENCE_CLOCK_GHZ = 2.4


@dataclass
class DeviceSpeed:
    """Where the active bytes live and how fast that memory and compute are."""

    name: str
    bandwidth_gbps: float | None
    peak_gops: float | None
    backend: str
    weight_bytes: float = 0.0  # active weight bytes read per decoded token
    weight_ops: float = 0.0  # 2 x active weight elements
    full_row_bytes: float = 0.0  # KV bytes per cached token, summed over full-attention layers
    window_row_bytes: float = 0.0  # the same over sliding-window layers
    window: int = 0  # the sliding window, in tokens
    layers: int = 0  # repeating layers computed on this device
    full_ops: float = 0.0  # attention ops per attended token, full-attention layers
    window_ops: float = 0.0  # the same, sliding-window layers
    state_bytes: float = 0.0  # recurrent state read and written per token (fixed)
    scan_layers: int = 0  # recurrent layers computed here: prefill scans their state per token
    expert_bytes_all: float = 0.0  # every expert tensor byte on this device
    expert_share: float = 0.0  # experts used / experts: the share one token reads
    expert_slots: float = 0.0  # MoE layers whose experts are read here x experts used per token
    expert_ops: float = 0.0  # the routed experts' part of weight_ops
    assumed: bool = False  # bandwidth is an assumption, not a spec or measurement
    measured: bool = False  # bandwidth measured on this box: the narrower efficiency spread
    dot_path: DotPath = ""  # a CPU's quantised dot products: VNNI, AMX (each its own spread)
    split_layers: int = 0  # layers whose experts live here while the layer runs on a GPU
    split_s: float = 0.0  # decode: seconds per such layer per token (hand-over, sync)
    link_gbps: float = 0.0  # prefill: experts here cross the host link to the GPU each ubatch
    link_ubatch: int = 0
    link_peak_gbps: float = 0.0  # the GPU link's own rate per direction (host_link.py)
    ubatch: int = 512  # prefill: tokens per forward pass (min of -ub and -b)
    clock_ghz: float | None = None  # a GPU's boost clock (None: not known, or a CPU)
    # weight bytes read per token by ggml type (shares: scaling the total keeps them), and the
    # weights (elements) read per token by type
    type_bytes: dict[str, float] = field(default_factory=dict)
    type_weights: dict[str, float] = field(default_factory=dict)
    # G weights/s this device's dot products reach per ggml type where they, not the memory,
    # can set the pace (a CPU's threads x catalog/backends.yaml dot_rate_gws)
    dot_gws: dict[str, float] = field(default_factory=dict)
    bw_span: tuple[float, float] = (1.0, 1.0)  # (low, high) multipliers of bandwidth_gbps
    peak_span: tuple[float, float] = (1.0, 1.0)  # the same for peak_gops
    ceiling_gops: float | None = None  # the most ops/s any kernel reaches (int8 units; None: peak)
    staging_gbps: float | None = None  # host: staging copy rate (None: bandwidth / passes)
    # prefill: quantised matmuls run on the int8 matrix units (ceiling_gops; BackendFactors
    # prefill_int8), and weight_ops / expert_ops of float weights run at the FP16 peak
    int8_matmul: bool = False
    float_ops: float = 0.0  # weight_ops of F16/BF16/F32 weights
    float_expert_ops: float = 0.0  # the routed experts' part of float_ops
    basis: list[str] = field(default_factory=list)

    @property
    def layer_scale(self) -> float:
        """Decode's fixed time per layer (kernel floors, launches) runs in GPU cycles: the
        factors give it at REFERENCE_CLOCK_GHZ; a GPU of unknown clock, and a CPU, take it as
        given."""
        return REFERENCE_CLOCK_GHZ / self.clock_ghz if self.clock_ghz else 1.0

    @property
    def layer_steps(self) -> float:
        """Layers a token passes here, in reference-clock units of decode's time per layer."""
        return self.layers * self.layer_scale

    @property
    def scan_steps(self) -> float:
        """Recurrent layers a prompt token scans here, in reference-clock units of the scan's
        time per layer."""
        return self.scan_layers * self.layer_scale

    def attended(self, ctx: float) -> tuple[float, float]:
        """(full-attention cells, sliding-window cells) a token at position `ctx` attends to."""
        return ctx, min(ctx, float(self.window)) if self.window else ctx

    def attention_bytes(self, ctx: float) -> float:
        full, window = self.attended(ctx)
        return self.full_row_bytes * full + self.window_row_bytes * window + self.state_bytes

    def attention_ops(self, ctx: float) -> float:
        full, window = self.attended(ctx)
        return self.full_ops * full + self.window_ops * window

    def bytes_by_type(self) -> dict[str, float]:
        """weight_bytes split by ggml type in type_bytes' shares (a pass that reads other
        bytes, a verify or a file of another size, scales weight_bytes alone)."""
        total = sum(self.type_bytes.values())
        if not total:
            return {}
        return {t: self.weight_bytes * b / total for t, b in self.type_bytes.items()}

    @property
    def family_bytes(self) -> dict[str, float]:
        """type_bytes summed by quant family (quant_family)."""
        out: dict[str, float] = {}
        for t, b in self.type_bytes.items():
            family = quant_family(t)
            out[family] = out.get(family, 0.0) + b
        return out

    def decode_mix(self, factors: Mapping[str, float]) -> float:
        """Time multiplier of the decode weight read under per-family `factors`."""
        return _mix(self.family_bytes, factors)

    @property
    def has_work(self) -> bool:
        return bool(self.weight_bytes or self.full_row_bytes or self.window_row_bytes)


def active_share(tensor: TypedTensor, shape: ModelShape) -> float:
    """Fraction of a tensor read per decoded token."""
    if tensor.is_expert and shape.n_expert:
        return shape.n_expert_used / shape.n_expert
    if tensor.name == "token_embd.weight" and not shape.tied_embeddings:
        return 1.0 / max(tensor.shape[-1], 1)  # a lookup reads one row
    return 1.0


def _seconds(amount: float, rate_g: float | None, share: float) -> float:
    return amount / (rate_g * GB * share) if rate_g and amount else 0.0


def dot_seconds(dev: DeviceSpeed, ggml_type: str, scale: float = 1.0) -> float:
    """Seconds the device's dot products take over one token's weights of `ggml_type` (0 where
    no rate is recorded: the memory sets the pace)."""
    return _seconds(dev.type_weights.get(ggml_type, 0.0), dev.dot_gws.get(ggml_type), scale)


def weight_read_seconds(dev: DeviceSpeed, e: Efficiency) -> float:
    """Seconds to stream the active weights once: at the bandwidth share (times each quant
    family's multiplier), or, type by type, the dot products' time where they are slower."""
    share = e.offload if dev.split_layers and e.offload else e.weights
    if not dev.dot_gws or not dev.type_bytes:
        return _seconds(dev.weight_bytes, dev.bandwidth_gbps, share) * dev.decode_mix(e.quant)
    return sum(max(_seconds(b, dev.bandwidth_gbps, share) * e.quant.get(quant_family(t), 1.0),
                   dot_seconds(dev, t, e.dot))
               for t, b in dev.bytes_by_type().items())  # fmt: skip


def decode_tps(devices: list[DeviceSpeed], depth: int, eff: Mapping[str, Efficiency]) -> float:
    seconds = 0.0
    for dev in devices:
        e = eff[dev.backend]
        weights = max(weight_read_seconds(dev, e), _seconds(dev.weight_ops, dev.peak_gops, 1.0))
        # one query row: the kernel reads the cache and computes on it with little overlap
        attention = _seconds(dev.attention_bytes(depth), dev.bandwidth_gbps, e.kv) + _seconds(
            dev.attention_ops(depth), dev.peak_gops, e.attention
        )
        fixed = (
            dev.layer_steps * e.layer_s
            + dev.expert_slots * e.expert_s
            + dev.split_layers * dev.split_s
        )
        seconds += weights + attention + fixed
    return 1.0 / seconds if seconds > 0 else 0.0


def mean_attended(dev: DeviceSpeed, depth: int, prompt: int) -> tuple[float, float]:
    """Mean (full, window) cells over a `prompt`-token chunk on top of `depth` cached tokens."""
    full = depth + prompt / 2
    if not dev.window:
        return full, full
    w = dev.window
    lo, hi = depth, depth + prompt  # positions attend to depth + i cells, capped at the window
    if hi <= w:
        return full, full
    if lo >= w:
        return full, float(w)
    below = (w - lo) * (lo + w) / 2  # the positions under the window, summed
    return full, (below + (hi - w) * w) / prompt


def chunk_attention(dev: DeviceSpeed, depth: int, prompt: int) -> tuple[float, float]:
    """(attention ops, attended KV bytes) per token of a `prompt`-token chunk on top of
    `depth` cached tokens (`mean_attended` cells of each layer kind)."""
    full, window = mean_attended(dev, depth, prompt)
    ops = dev.full_ops * full + dev.window_ops * window
    return ops, dev.full_row_bytes * full + dev.window_row_bytes * window


def expert_padding(dev: DeviceSpeed, prompt: int) -> float:
    """Work done / work needed for the routed experts of one prefill ubatch (>= 1): tiles
    part-filled by the tokens each expert receives (estimate/expert_tiles.py)."""
    if not dev.expert_share:
        return 1.0
    return tile_padding(min(dev.ubatch, prompt), dev.expert_share)


# Offloaded experts are copied to the GPU from pageable memory (llama.cpp mmaps the model): the
# driver stages such a copy through a pinned buffer (NVIDIA, CUDA C++ Best Practices Guide,
# "Pinned Memory"), so each byte crossing the link is read from RAM, written to the staging
# buffer and read again by the DMA engine: three passes over system memory.
STAGING_PASSES = 3


def link_rate(dev: DeviceSpeed, link_gbps: float) -> float:
    """GB/s at which a host device's experts reach the GPU: the link, or the staging copy where
    it is the slower part: a third of the host's memory bandwidth, or the rate devices.py gives
    where the memory and the cores' reads differ (estimate/fabric.py)."""
    if dev.staging_gbps:
        return min(link_gbps, dev.staging_gbps)
    if dev.bandwidth_gbps:
        return min(link_gbps, dev.bandwidth_gbps / STAGING_PASSES)
    return link_gbps


def matmul_seconds(dev: DeviceSpeed, ops: float, float_ops: float, share: float) -> float:
    """Seconds for `ops` weight ops at `share` of the rate their kernels run on: the int8 matrix
    units for quantised weights where the backend runs them there (dev.int8_matmul), the FP16
    peak for float weights (`float_ops` of them) and everywhere else."""
    if dev.int8_matmul and dev.ceiling_gops:
        return _seconds(ops - float_ops, dev.ceiling_gops, share) + _seconds(
            float_ops, dev.peak_gops, share
        )
    return _seconds(ops, dev.peak_gops, share)


def prefill_tps(
    devices: list[DeviceSpeed],
    depth: int,
    eff: Mapping[str, Efficiency],
    prompt: int = TTFT_PROMPT,
) -> float:
    """Tokens/s for a `prompt`-token chunk on top of `depth` cached tokens."""
    seconds = 0.0
    for dev in devices:
        if not dev.peak_gops:
            return 0.0
        e = eff[dev.backend]
        attention, kv = chunk_attention(dev, depth, prompt)
        expert = e.experts or e.weights  # small per-expert batches run below the dense rate
        dense_float = dev.float_ops - dev.float_expert_ops
        seconds += matmul_seconds(dev, dev.weight_ops - dev.expert_ops, dense_float, e.weights)
        if dev.link_ubatch:  # run on the GPU after crossing the link (op offload)
            link = link_rate(dev, dev.link_gbps)
            seconds += _seconds(dev.expert_bytes_all / dev.link_ubatch, link, 1.0)
        else:
            experts = matmul_seconds(dev, dev.expert_ops, dev.float_expert_ops, expert)
            seconds += experts * expert_padding(dev, prompt)
        seconds += _seconds(attention, dev.peak_gops, e.attention)
        seconds += _seconds(kv * e.kv_passes, dev.bandwidth_gbps, 1.0)
        seconds += dev.scan_steps * e.scan_s
    return 1.0 / seconds if seconds > 0 else 0.0


def verify_devices(devices: list[DeviceSpeed], tokens: int) -> list[DeviceSpeed]:
    """The same devices for one forward pass over `tokens` tokens (a speculative verify).

    Dense weights and the cached KV are read once; each token may route to other experts, so
    the expert bytes read grow to all experts x (1 - (1 - k/E)^tokens) (uniform routing).
    """
    out = []
    for dev in devices:
        active = dev.expert_bytes_all * dev.expert_share
        distinct = 1.0 - (1.0 - dev.expert_share) ** tokens if dev.expert_share else 0.0
        out.append(
            replace(
                dev,
                weight_bytes=dev.weight_bytes - active + dev.expert_bytes_all * distinct,
                weight_ops=dev.weight_ops * tokens,
                type_weights={t: w * tokens for t, w in dev.type_weights.items()},
                expert_ops=dev.expert_ops * tokens,
                float_ops=dev.float_ops * tokens,
                float_expert_ops=dev.float_expert_ops * tokens,
                full_ops=dev.full_ops * tokens,
                window_ops=dev.window_ops * tokens,
                expert_bytes_all=0.0,
                expert_share=0.0,
                expert_slots=dev.expert_slots * distinct / dev.expert_share if distinct else 0.0,
                basis=[],
            )
        )
    return out


def speculative_tps(
    t_draft: float, t_verify: float, n_draft: int, acceptance: float
) -> tuple[float, float]:
    """(tok/s, tokens per step) of draft-then-verify decoding.

    Expected tokens per step with n drafted tokens and per-token acceptance a:
    (1 - a^(n+1)) / (1 - a) (Leviathan et al. 2023, "Fast Inference from Transformers via
    Speculative Decoding", eq. 1); a step costs n draft passes plus one verify pass.
    """
    tokens = (1.0 - acceptance ** (n_draft + 1)) / (1.0 - acceptance)
    return tokens / (n_draft * t_draft + t_verify), tokens


EfficiencySet = dict[str, Efficiency]


def measured_backends(devices: list[DeviceSpeed]) -> tuple[set[str], set[str], set[str]]:
    """(backends whose bandwidth was measured on the box, those of them on a CPU whose dot
    products take VNNI, and those on one with AMX)."""
    measured = {d.backend for d in devices if d.measured}
    vnni = {d.backend for d in devices if d.measured and d.dot_path == "vnni"}
    return measured, vnni, {d.backend for d in devices if d.measured and d.dot_path == "amx"}


def decode_efficiencies(
    factors: Mapping[str, BackendFactors],
    measured: AbstractSet[str],
    vnni: AbstractSet[str] = frozenset(),
    amx: AbstractSet[str] = frozenset(),
) -> tuple[EfficiencySet, EfficiencySet, EfficiencySet]:
    """(mid, low, high) decode efficiencies per backend; a bandwidth measured on the box itself
    narrows the spread (the spread of the spec figures' efficiencies is partly bandwidth).

    "low" is the slowest end: least efficient and the most per-layer overhead. An uncertain
    bandwidth widens the range through the devices' spans (`at_end`), not here."""
    sets: tuple[EfficiencySet, EfficiencySet, EfficiencySet] = ({}, {}, {})
    for name, f in factors.items():
        bandwidth = (1.0, 1.0, 1.0)
        weights = (f.decode_efficiency, *f.decode_range)
        if name in measured and f.measured_decode_efficiency:
            weights = (f.measured_decode_efficiency, *f.measured_decode_range)
        if name in vnni and f.measured_vnni_decode_efficiency:
            weights = (f.measured_vnni_decode_efficiency, *f.measured_vnni_decode_range)
        if name in amx and f.measured_amx_decode_efficiency:
            weights = (f.measured_amx_decode_efficiency, *f.measured_amx_decode_range)
        kv = weights  # no depth measurement: the KV streams like the weights
        if f.kv_read_efficiency is not None:
            kv = (f.kv_read_efficiency, *f.kv_read_range)
        attention = (f.attention_decode_efficiency, *f.attention_decode_range)
        low_ms, high_ms = f.layer_overhead_range
        layer_ms = (f.layer_overhead_ms, high_ms, low_ms)
        low_slot, high_slot = f.expert_slot_range
        slot_ms = (f.expert_slot_ms, high_slot, low_slot)
        dot = (1.0, *f.dot_rate_range)
        # offloaded experts on a stated host bandwidth: the fitted share, with the CPU's spread
        # (never past the bandwidth itself)
        share = None if name in measured else f.offload_decode_efficiency
        offload = [min(1.0, share * w / weights[0]) if share else None for w in weights]
        for i, out in enumerate(sets):
            out[name] = Efficiency(weights[i] * bandwidth[i], attention[i],
                                   kv=kv[i] * bandwidth[i], layer_s=layer_ms[i] * 1e-3,
                                   expert_s=slot_ms[i] * 1e-3,
                                   quant=f.quant_decode_factor, dot=dot[i],
                                   offload=offload[i])  # fmt: skip
    return sets


def prefill_efficiencies(
    factors: Mapping[str, BackendFactors],
) -> tuple[EfficiencySet, EfficiencySet, EfficiencySet]:
    sets: tuple[EfficiencySet, EfficiencySet, EfficiencySet] = ({}, {}, {})
    for name, f in factors.items():
        experts: tuple[float | None, ...] = (None, None, None)
        if f.expert_prefill_efficiency is not None:
            experts = (f.expert_prefill_efficiency, *f.expert_prefill_range)
        weights = (f.prefill_efficiency, *f.prefill_range)
        attention = (f.attention_prefill_efficiency, *f.attention_prefill_range)
        low_passes, high_passes = f.prefill_kv_passes_range
        passes = (f.prefill_kv_passes, high_passes, low_passes)  # the slow end reads most
        low_scan, high_scan = f.scan_step_range
        scan = (f.scan_step_us, high_scan, low_scan)
        for i, out in enumerate(sets):
            out[name] = Efficiency(weights[i], attention[i], experts=experts[i],
                                   kv_passes=passes[i], scan_s=scan[i] * 1e-6)  # fmt: skip
    return sets


@dataclass(frozen=True)
class SpeedFigures:
    tg: float
    tg_range: tuple[float, float]
    pp: float
    pp_range: tuple[float, float]
    ttft_s: float
    tg_ceiling: float  # physics: what no decode or prefill figure of these devices can pass
    pp_ceiling: float


def at_end(devices: list[DeviceSpeed], end: int) -> list[DeviceSpeed]:
    """The devices at the low (1) or high (2) end of their rates' spans; 0: as they are."""
    if not end:
        return devices
    return [
        replace(
            d,
            bandwidth_gbps=d.bandwidth_gbps * d.bw_span[end - 1] if d.bandwidth_gbps else None,
            peak_gops=d.peak_gops * d.peak_span[end - 1] if d.peak_gops else None,
        )
        for d in devices
    ]


def decode_ceiling(devices: list[DeviceSpeed], depth: int, tokens_per_step: float = 1.0) -> float:
    """Physics: tokens per step x bandwidth / bytes read per step, at the top of every span."""
    seconds = sum(
        _seconds(d.weight_bytes + d.attention_bytes(depth), d.bandwidth_gbps, d.bw_span[1])
        for d in devices
    )
    return tokens_per_step / seconds if seconds > 0 else 0.0


def prefill_ceiling(devices: list[DeviceSpeed], depth: int, prompt: int = TTFT_PROMPT) -> float:
    """Physics: the fastest compute any kernel has (int8 matrix units where the chip has them)
    / ops per prompt token, at the top of every span; offloaded experts cross their GPU's link."""
    seconds = 0.0
    for d in devices:
        ops = d.weight_ops + chunk_attention(d, depth, prompt)[0]
        if d.link_ubatch:  # the experts' ops run on the GPU; their bytes cross the link
            ops -= d.expert_ops
            # the link's own rate, at the top of its RAM span
            link = link_rate(at_end([d], 2)[0], d.link_peak_gbps)
            seconds += _seconds(d.expert_bytes_all / d.link_ubatch, link, 1.0)
        seconds += _seconds(ops, d.ceiling_gops or d.peak_gops, d.peak_span[1])
    return 1.0 / seconds if seconds > 0 else 0.0


def efficiency_sets(
    devices: list[DeviceSpeed], backends: BackendCatalog
) -> tuple[tuple[EfficiencySet, ...], tuple[EfficiencySet, ...]]:
    """(decode (mid, low, high), prefill (mid, low, high)) for the backends of `devices`."""
    factors = {dev.backend: backends.backends[dev.backend] for dev in devices}
    return decode_efficiencies(factors, *measured_backends(devices)), prefill_efficiencies(factors)


def validation_spread(
    devices: list[DeviceSpeed], backends: BackendCatalog, test: str
) -> tuple[float, float] | None:
    """The widest held-out spread (BackendFactors.decode_validation / prefill_validation) of
    the backends `devices` run on; None where no backend carries one (the CPU's own runs)."""
    spans = []
    for d in devices:
        f = backends.backends.get(d.backend)
        span = (f.decode_validation if test == "tg" else f.prefill_validation) if f else None
        if span and d.has_work:
            spans.append(span)
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def figure_ends(
    devices: list[DeviceSpeed], depth: int, backends: BackendCatalog, test: str,
    prompt: int = TTFT_PROMPT, ends: int = 3,
) -> tuple[float, ...]:  # fmt: skip
    """(figure, low, high) of decode ("tg") or of prefill ("pp", a `prompt`-token chunk) at
    `depth`, each under physics; (figure,) alone with `ends` 1. The range is never narrower than
    the spread of held-out public rows on the same backends."""
    decode, prefill = efficiency_sets(devices, backends)
    if test == "tg":
        top = decode_ceiling(devices, depth)
        out = [min(decode_tps(at_end(devices, i), depth, decode[i]), top) for i in range(ends)]
    else:
        top = prefill_ceiling(devices, depth, prompt)
        out = [min(prefill_tps(at_end(devices, i), depth, prefill[i], prompt), top)
               for i in range(ends)]  # fmt: skip
    if ends == 1:
        return (out[0],)
    spread = validation_spread(devices, backends, test)
    return out[0], *widen(out[0], (out[1], out[2]), spread, top)


def speed_figures(devices: list[DeviceSpeed], depth: int, backends: BackendCatalog) -> SpeedFigures:
    tg, *tg_range = figure_ends(devices, depth, backends, "tg")
    pp, *pp_range = figure_ends(devices, depth, backends, "pp")
    ttft = TTFT_PROMPT / pp + (1.0 / tg if tg else 0.0) if pp else 0.0
    return SpeedFigures(
        tg=shown(tg, 2),
        tg_range=(shown(tg_range[0], 2), shown(tg_range[1], 2)),
        pp=shown(pp, 1),
        pp_range=(shown(pp_range[0], 1), shown(pp_range[1], 1)),
        ttft_s=shown(ttft, 3),
        tg_ceiling=shown_up(decode_ceiling(devices, depth)),
        pp_ceiling=shown_up(prefill_ceiling(devices, depth)),
    )


def as_speed_estimate(fig: SpeedFigures, depth: int) -> SpeedEstimate:
    return SpeedEstimate(
        tg_tps=fig.tg, tg_tps_range=fig.tg_range, pp_tps=fig.pp, pp_tps_range=fig.pp_range,
        depth=depth, ttft_s=fig.ttft_s, tg_tps_ceiling=fig.tg_ceiling,
        pp_tps_ceiling=fig.pp_ceiling,
    )  # fmt: skip


def shown_up(value: float, digits: int = 4) -> float:
    """A ceiling as shown: `digits` significant figures, rounded up so that it never reads
    below the bound it stands for (and at most 0.1 % above it)."""
    if value <= 0:
        return 0.0
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale) / scale


def shown(value: float, places: int) -> float:
    """`value` to `places` decimals, or to 2 significant figures where that would show 0: a
    slow prediction is slow, not zero."""
    rounded = round(value, places)
    if rounded or value <= 0:
        return rounded
    return round(value, 1 - math.floor(math.log10(value)))
