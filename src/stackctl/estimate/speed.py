"""Roofline decode/prefill speed with ranges and the basis of every figure.

Decode: each token reads the active weights (all dense tensors, the output matrix, the
used share of the experts) plus the KV already cached at `depth`; time is the sum over
devices of bytes / (bandwidth x efficiency), bounded below by ops / peak. Prefill: ops per
token (2 per active weight plus attention over the cached context) over peak ops x efficiency.
Efficiencies and their spread come from catalog/backends.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackctl.estimate.catalog import BackendCatalog
from stackctl.estimate.recipe import TypedTensor
from stackctl.estimate.shape import ModelShape

TTFT_PROMPT = 512
GB = 1e9


@dataclass
class DeviceSpeed:
    """Where the active bytes live and how fast that memory and compute are."""

    name: str
    bandwidth_gbps: float | None
    peak_gops: float | None
    backend: str
    weight_bytes: float = 0.0  # active weight bytes read per decoded token
    weight_ops: float = 0.0  # 2 x active weight elements
    kv_bytes_per_ctx: float = 0.0  # KV bytes read per cached token
    attn_ops_per_ctx: float = 0.0  # attention ops per cached token
    expert_bytes_all: float = 0.0  # every expert tensor byte on this device
    expert_share: float = 0.0  # experts used / experts: the share one token reads
    assumed: bool = False  # bandwidth is an assumption, not a spec or measurement
    basis: list[str] = field(default_factory=list)


def active_share(tensor: TypedTensor, shape: ModelShape) -> float:
    """Fraction of a tensor read per decoded token."""
    if tensor.is_expert and shape.n_expert:
        return shape.n_expert_used / shape.n_expert
    if tensor.name == "token_embd.weight" and not shape.tied_embeddings:
        return 1.0 / max(tensor.shape[-1], 1)  # a lookup reads one row
    return 1.0


def attention_per_ctx(shape: ModelShape, kv_row_bytes: float) -> tuple[float, float]:
    """(KV bytes, attention ops) per token of context, for full-attention layers."""
    ops = 0.0
    for layer in shape.layers:
        if layer.kv_k and not layer.swa:
            ops += 4.0 * layer.n_head * layer.head_k  # QK^T and AV, 2 ops per MAC
    return kv_row_bytes, ops


def decode_tps(devices: list[DeviceSpeed], depth: int, eff: dict[str, float]) -> float:
    seconds = 0.0
    for dev in devices:
        bytes_read = dev.weight_bytes + dev.kv_bytes_per_ctx * depth
        ops = dev.weight_ops + dev.attn_ops_per_ctx * depth
        t_mem = (
            bytes_read / (dev.bandwidth_gbps * GB * eff[dev.backend]) if dev.bandwidth_gbps else 0
        )
        t_ops = ops / (dev.peak_gops * GB) if dev.peak_gops else 0.0
        seconds += max(t_mem, t_ops)
    return 1.0 / seconds if seconds > 0 else 0.0


def prefill_tps(devices: list[DeviceSpeed], depth: int, eff: dict[str, float]) -> float:
    """Tokens/s for a 512-token chunk on top of `depth` cached tokens."""
    seconds = 0.0
    mean_ctx = depth + TTFT_PROMPT / 2
    for dev in devices:
        ops = dev.weight_ops + dev.attn_ops_per_ctx * mean_ctx
        if not dev.peak_gops:
            return 0.0
        seconds += ops / (dev.peak_gops * GB * eff[dev.backend])
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
            DeviceSpeed(
                dev.name,
                dev.bandwidth_gbps,
                dev.peak_gops,
                dev.backend,
                weight_bytes=dev.weight_bytes - active + dev.expert_bytes_all * distinct,
                weight_ops=dev.weight_ops * tokens,
                kv_bytes_per_ctx=dev.kv_bytes_per_ctx,
                attn_ops_per_ctx=dev.attn_ops_per_ctx * tokens,
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


@dataclass(frozen=True)
class SpeedFigures:
    tg: float
    tg_range: tuple[float, float]
    pp: float
    pp_range: tuple[float, float]
    ttft_s: float


def speed_figures(devices: list[DeviceSpeed], depth: int, backends: BackendCatalog) -> SpeedFigures:
    names = {dev.backend for dev in devices}
    factors = {name: backends.backends[name] for name in names}
    mid = {n: f.decode_efficiency for n, f in factors.items()}
    assumed = {dev.backend for dev in devices if dev.assumed}
    low = {n: f.decode_range[0] for n, f in factors.items()}
    high = {n: f.decode_range[1] for n, f in factors.items()}
    for name in assumed:
        low[name] *= factors[name].assumed_bandwidth_range[0]
        high[name] *= factors[name].assumed_bandwidth_range[1]
    tg = decode_tps(devices, depth, mid)
    tg_range = (decode_tps(devices, depth, low), decode_tps(devices, depth, high))
    pmid = {n: f.prefill_efficiency for n, f in factors.items()}
    plow = {n: f.prefill_range[0] for n, f in factors.items()}
    phigh = {n: f.prefill_range[1] for n, f in factors.items()}
    pp = prefill_tps(devices, depth, pmid)
    pp_range = (prefill_tps(devices, depth, plow), prefill_tps(devices, depth, phigh))
    ttft = TTFT_PROMPT / pp + (1.0 / tg if tg else 0.0) if pp else 0.0
    return SpeedFigures(
        tg=round(tg, 2),
        tg_range=(round(tg_range[0], 2), round(tg_range[1], 2)),
        pp=round(pp, 1),
        pp_range=(round(pp_range[0], 1), round(pp_range[1], 1)),
        ttft_s=round(ttft, 3),
    )
