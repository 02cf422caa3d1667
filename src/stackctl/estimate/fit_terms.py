"""A public row's time per token as a linear sum of the speed model's inverse efficiencies.

speed.py's roofline, read backwards: seconds per token = weight bytes / bandwidth x (1 /
decode efficiency) + KV bytes / bandwidth x (1 / KV efficiency) + layers x seconds per layer
+ ..., so a backend's factors can be fitted to measured rows by least squares
(estimate/ridge.py). Where the roofline takes the larger of a bandwidth and a compute time,
the branch the current factors select is the one written.

Parameter names are "<owner>:<factor>", the owner being the backend (or group) whose factor it
is; the host's offload factors are "host:split", "host:ilink" and "host:iw" (the inverse share
of its bandwidth offloaded experts are read at). A GPU backend's per-quant-family decode time
multipliers ("<owner>:qd.kquant") multiply the weight read's inverse efficiency over the share
of the bytes in that family: the product is linearised around the current factors (value = iw
q, d/d iw = q, d/d q = iw), which is exact when one of the two is held, and the fit's passes
re-linearise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from stackctl.estimate.catalog import BackendFactors
from stackctl.estimate.speed import (
    GB,
    QUANT_FAMILIES,
    DeviceSpeed,
    chunk_attention,
    dot_seconds,
    expert_padding,
    link_rate,
    matmul_seconds,
)

# inverse efficiencies (iw: weights read, ikv: KV read, iad: decode attention ops, ip: dense
# prefill, ix: routed-expert prefill, iap: prefill attention), seconds per layer (L) and per
# routed expert used in a layer (E), the prefill's passes over the attended KV (pkv) and its
# seconds per prompt token per recurrent layer (S: the token-by-token scan)
DECODE = ("iw", "ikv", "L", "iad", "E")
PREFILL = ("ip", "ix", "iap", "pkv", "S")
QUANT_DECODE = tuple(f"qd.{f}" for f in QUANT_FAMILIES)
FACTORS = DECODE + PREFILL + QUANT_DECODE

Owner = Callable[[DeviceSpeed], str]
Terms = tuple[dict[str, float], float]  # (coefficient per parameter, constant seconds)


def _add(coef: dict[str, float], name: str, value: float) -> None:
    if value:
        coef[name] = coef.get(name, 0.0) + value


def _weighted(
    coef: dict[str, float],
    name: str,
    amount: float,
    shares: Mapping[str, float],
    quant: str | None,
    x: Mapping[str, float],
    mix: float,
) -> float:
    """`amount` x[name] x `mix` (the family mix of `shares` under the "<quant>.<family>"
    multipliers: DeviceSpeed.decode_mix), linearised in both; returns the constant the
    linearisation adds. No `quant` (the CPU, whose factors are this project's own): `amount`
    x[name] alone."""
    total = sum(shares.values())
    if quant is None or not total:
        _add(coef, name, amount)
        return 0.0
    _add(coef, name, amount * mix)
    for f, v in shares.items():
        _add(coef, f"{quant}.{f}", amount * x[name] * v / total)
    return -amount * x[name] * mix


def _quant(owner: str, kind: str) -> str | None:
    return None if owner == "cpu" else f"{owner}:{kind}"


def _slow_dots(d: DeviceSpeed, bw: float, iw: float) -> tuple[float, float]:
    """(seconds of the dot products, bytes) of the ggml types whose dot products take longer
    than reading them at the current inverse efficiency `iw` (speed.weight_read_seconds's
    slower branch)."""
    if not d.dot_gws or not bw:
        return 0.0, 0.0
    seconds = nbytes = 0.0
    for t, b in d.bytes_by_type().items():
        dot = dot_seconds(d, t)
        if dot > b / bw * iw:
            seconds, nbytes = seconds + dot, nbytes + b
    return seconds, nbytes


def decode_terms(
    devices: tuple[DeviceSpeed, ...], depth: int, owner: Owner, x: Mapping[str, float]
) -> Terms:
    coef: dict[str, float] = {}
    const = 0.0
    for d in devices:
        o = owner(d)
        bw = d.bandwidth_gbps * GB if d.bandwidth_gbps else 0.0
        peak = d.peak_gops * GB if d.peak_gops else 0.0
        read = d.weight_bytes / bw if bw else 0.0
        compute = d.weight_ops / peak if peak else 0.0
        quant = _quant(o, "qd")
        mix = d.decode_mix({f: x[f"{quant}.{f}"] for f in QUANT_FAMILIES}) if quant else 1.0
        iw = "host:iw" if d.split_layers else f"{o}:iw"  # offloaded experts: the host's own
        dots, dot_bytes = _slow_dots(d, bw, x[iw])  # a CPU's slower dot products
        read -= dot_bytes / bw if dot_bytes else 0.0
        if compute > read * x[iw] * mix + dots:
            const += compute
        else:
            const += dots
            const += _weighted(coef, iw, read, d.family_bytes, quant, x, mix)
        kv = d.attention_bytes(depth) / bw if bw else 0.0
        ops = d.attention_ops(depth) / peak if peak else 0.0
        _add(coef, f"{o}:ikv", kv)  # read and computed one after the other (speed.py)
        _add(coef, f"{o}:iad", ops)
        _add(coef, f"{o}:L", d.layer_steps)
        _add(coef, f"{o}:E", d.expert_slots)
        _add(coef, "host:split", float(d.split_layers))
    return coef, const


def prefill_terms(
    devices: tuple[DeviceSpeed, ...], depth: int, prompt: int, owner: Owner,
    x: Mapping[str, float],
) -> Terms:  # fmt: skip
    """Prefill seconds per token, linear in the inverse factors; the host link at its current
    value `x` decides whether it or the staging copy in RAM sets an offload's pace."""
    coef: dict[str, float] = {}
    const = 0.0
    for d in devices:
        if not d.peak_gops:
            continue
        o = owner(d)
        peak = d.peak_gops * GB
        attention, kv = chunk_attention(d, depth, prompt)
        dense_float = d.float_ops - d.float_expert_ops
        _add(coef, f"{o}:ip", matmul_seconds(d, d.weight_ops - d.expert_ops, dense_float, 1.0))
        if d.link_ubatch:  # op offload: the experts cross the host link each ubatch
            link = d.link_peak_gbps / x["host:ilink"]  # "host:ilink": 1 / the link share
            staged = link_rate(d, link)
            if staged < link:  # the staging copy in RAM sets the pace, not the link
                const += d.expert_bytes_all / d.link_ubatch / (staged * GB)
            else:
                _add(coef, "host:ilink", d.expert_bytes_all / d.link_ubatch
                     / (d.link_peak_gbps * GB))  # fmt: skip
        else:
            experts = matmul_seconds(d, d.expert_ops, d.float_expert_ops, 1.0)
            _add(coef, f"{o}:ix", experts * expert_padding(d, prompt))
        _add(coef, f"{o}:iap", attention / peak)
        if d.bandwidth_gbps:
            _add(coef, f"{o}:pkv", kv / (d.bandwidth_gbps * GB))
        _add(coef, f"{o}:S", d.scan_steps)
    return coef, const


def inverse_factors(owner: str, f: BackendFactors) -> dict[str, float]:
    """A backend's factors as the fit's parameters."""
    return {
        f"{owner}:iw": 1.0 / f.decode_efficiency,
        f"{owner}:ikv": 1.0 / (f.kv_read_efficiency or f.decode_efficiency),
        f"{owner}:L": f.layer_overhead_ms * 1e-3,
        f"{owner}:E": f.expert_slot_ms * 1e-3,
        f"{owner}:iad": 1.0 / f.attention_decode_efficiency,
        f"{owner}:ip": 1.0 / f.prefill_efficiency,
        f"{owner}:ix": 1.0 / (f.expert_prefill_efficiency or f.prefill_efficiency),
        f"{owner}:iap": 1.0 / f.attention_prefill_efficiency,
        f"{owner}:pkv": f.prefill_kv_passes,
        f"{owner}:S": f.scan_step_us * 1e-6,
        **{f"{owner}:qd.{q}": f.quant_factor(q) for q in QUANT_FAMILIES},
    }


def _spread(
    old: tuple[float, float], old_mid: float, new_mid: float, cap: float | None
) -> tuple[float, float]:
    """The old range's relative spread around the new figure."""
    if old_mid <= 0 or old == (0.0, 0.0):
        lo, hi = new_mid * 0.75, new_mid * 1.25
    else:
        lo, hi = old[0] / old_mid * new_mid, old[1] / old_mid * new_mid
    if cap is not None:
        lo, hi = min(lo, cap), min(hi, cap)
    return lo, hi


def with_factors(f: BackendFactors, owner: str, x: Mapping[str, float]) -> BackendFactors:
    """`f` with the fitted parameters of `owner` laid over (ranges keep their relative spread)."""
    w, kv, ms = 1.0 / x[f"{owner}:iw"], 1.0 / x[f"{owner}:ikv"], x[f"{owner}:L"] * 1e3
    slot = x[f"{owner}:E"] * 1e3
    ad, p, ex, ap = (1.0 / x[f"{owner}:{k}"] for k in ("iad", "ip", "ix", "iap"))
    kv_old = f.kv_read_efficiency or f.decode_efficiency
    kv_range = f.kv_read_range if f.kv_read_efficiency else f.decode_range
    ex_old = f.expert_prefill_efficiency or f.prefill_efficiency
    ex_range = f.expert_prefill_range if f.expert_prefill_efficiency else f.prefill_range
    return f.model_copy(
        update={
            "decode_efficiency": w,
            "decode_range": _spread(f.decode_range, f.decode_efficiency, w, 1.0),
            "kv_read_efficiency": kv,
            "kv_read_range": _spread(kv_range, kv_old, kv, 1.0),
            "layer_overhead_ms": ms,
            "layer_overhead_range": _spread(f.layer_overhead_range, f.layer_overhead_ms, ms, None),
            "expert_slot_ms": slot,
            "expert_slot_range": _spread(f.expert_slot_range, f.expert_slot_ms, slot, None),
            "attention_decode_efficiency": ad,
            "attention_decode_range": _spread(
                f.attention_decode_range, f.attention_decode_efficiency, ad, 1.0
            ),
            "prefill_efficiency": p,
            "prefill_range": _spread(f.prefill_range, f.prefill_efficiency, p, 1.0),
            "expert_prefill_efficiency": ex,
            "expert_prefill_range": _spread(ex_range, ex_old, ex, 1.0),
            "attention_prefill_efficiency": ap,
            "attention_prefill_range": _spread(
                f.attention_prefill_range, f.attention_prefill_efficiency, ap, 1.0
            ),
            "quant_decode_factor": _quant_factors(owner, x),
            "prefill_kv_passes": x[f"{owner}:pkv"],
            "prefill_kv_passes_range": _spread(
                f.prefill_kv_passes_range, f.prefill_kv_passes, x[f"{owner}:pkv"], None
            ),
            "scan_step_us": x[f"{owner}:S"] * 1e6,
            "scan_step_range": _spread(
                f.scan_step_range, f.scan_step_us, x[f"{owner}:S"] * 1e6, None
            ),
        }
    )


def _quant_factors(owner: str, x: Mapping[str, float]) -> dict[str, float]:
    """The families whose decode multiplier is not 1 (at 3 places)."""
    out = {}
    for family in QUANT_FAMILIES:
        value = x.get(f"{owner}:qd.{family}", 1.0)
        if round(value, 3) > 1.0:
            out[family] = value
    return out
