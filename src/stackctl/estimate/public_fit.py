"""Public llama-bench rows (tests/data/speed/public_llama_bench.yaml) against the estimator:
per-row predictions, a fit of the backend efficiencies, and leave-one-source-out validation.

Each row becomes the estimator's per-device bytes and ops (`speed_inputs`) once; predicting it
under other efficiency factors is then arithmetic. The weights read per token are scaled to the
file size the row states (a UD/imatrix file is not the catalog recipe's size). The fit scales,
per backend, the decode efficiencies (weights and KV read: both are bandwidth) and the prefill
efficiencies (dense, expert and attention: all compute) by the geometric median of
measured / predicted, capped at 1 (physics); two passes, since the per-layer and attention
terms do not scale.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stackctl.detect import declare_hardware
from stackctl.errors import EstimateError, HardwareError
from stackctl.estimate.catalog import BackendCatalog, BackendFactors, EstimateCatalog
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.speed import (
    DeviceSpeed,
    decode_ceiling,
    decode_tps,
    efficiency_sets,
    prefill_ceiling,
    prefill_tps,
)
from stackctl.estimate.view import load_model_view
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import Accelerator, CpuInfo, HardwareProfile, MemoryInfo, OsInfo
from stackctl.yamlio import MAX_DATASET_BYTES, read_yaml

GIB = 1 << 30
# llama.cpp backends the estimate request has no name for: run as `as_backend`, fitted apart
OTHER_BACKENDS = {"sycl": "vulkan"}


@dataclass(frozen=True)
class Case:
    """One public row, ready to predict."""

    source: str
    backend: str
    test: str  # pp or tg
    depth: int
    n_prompt: int
    measured: float
    family: str
    label: str
    devices: tuple[DeviceSpeed, ...]  # labelled with the base backend
    key: str  # backend-vendor, e.g. vulkan-intel: a refinement fitted where rows exist


def _profile(entry: Mapping[str, Any], ram_gb: float | None) -> HardwareProfile:
    declared = dict(entry.get("declare") or {})
    declared.setdefault("gpus", [])
    if "ram_gib" not in declared and ram_gb and not declared.get("system"):
        declared["ram_gib"] = float(ram_gb)
    if declared["gpus"] or declared.get("system") or declared.get("cpu"):
        box = declare_hardware(**declared)
    else:
        box = HardwareProfile(
            name="public-row",
            cpu=CpuInfo(arch="x86_64"),
            memory=MemoryInfo(total_bytes=int((ram_gb or 64) * GIB)),
            os=OsInfo(system="linux"),
        )
    if "gpu" in entry:
        g = entry["gpu"]
        acc = Accelerator(
            vendor=g["vendor"],
            name=g["name"],
            memory_bytes=int(g["memory_gib"] * GIB),
            unified=bool(g.get("unified", False)),
            bandwidth_gbps=g["bandwidth_gbps"],
            bandwidth_source=g["source"],
        )
        box = box.model_copy(update={"accelerators": [acc]})
    cpu = box.cpu
    if "cpu" in entry:
        c = entry["cpu"]
        facts = {"model": c["model"], "cores": c["cores"], "threads": c["cores"],
                 "flags": c["flags"], "bandwidth_gbps": c["bandwidth_gbps"],
                 "bandwidth_source": c["source"]}  # fmt: skip
        cpu = cpu.model_copy(update=facts)
    if "cores" in entry:
        cpu = cpu.model_copy(update={"cores": entry["cores"], "threads": entry["cores"]})
    if not cpu.flags:
        arm = cpu.arch in ("aarch64", "arm64") or any(a.vendor == "apple" for a in box.accelerators)
        cpu = cpu.model_copy(update={"flags": [] if arm else ["avx2"],
                                     "arch": "arm64" if arm else cpu.arch})  # fmt: skip
    return box.model_copy(update={"cpu": cpu})


def _request(row: Mapping[str, Any], backend: str, native: int | None) -> EstimateRequest:
    flags = row.get("flags") or {}
    depth = int(row.get("depth") or 0)
    ctx = depth + int(row.get("n_prompt") or 0) + int(row.get("n_gen") or 0) + 256
    if native:
        ctx = min(ctx, native)
    ngl = row.get("ngl")
    return EstimateRequest(
        model=row["model"],
        quant=row["quant"],
        backend=OTHER_BACKENDS.get(backend, backend),  # type: ignore[arg-type]
        ctx=ctx,
        depth=depth,
        ngl=99 if ngl is None else int(ngl),
        n_cpu_moe=int(flags.get("n_cpu_moe") or 0),
        threads=flags.get("threads"),
        ubatch=int(flags.get("ubatch") or 512),
        batch=int(flags.get("batch") or 2048),
        cache_type_k=flags.get("type_k") or "f16",
        cache_type_v=flags.get("type_v") or "f16",
        flash_attn=bool(flags.get("fa", 1)),
        override_tensor=[flags["ot"]] if flags.get("ot") else [],
    )


def _scaled(devices: list[DeviceSpeed], ratio: float, backend: str) -> tuple[DeviceSpeed, ...]:
    """Weights read scaled to the row's file size; devices labelled with the base backend."""
    out = []
    for d in devices:
        name = backend if d.name != "host" else d.backend
        out.append(replace(d, weight_bytes=d.weight_bytes * ratio,
                           expert_bytes_all=d.expert_bytes_all * ratio, backend=name))  # fmt: skip
    return tuple(out)


def _key(backend: str, profile: HardwareProfile) -> str:
    if backend == "cpu" or not profile.accelerators:
        return backend
    acc = profile.accelerators[0]
    return f"{backend}-{acc.vendor}" + ("-unified" if acc.unified else "")


def load_cases(
    rows_path: Path, hardware_path: Path, catalog: EstimateCatalog
) -> tuple[list[Case], list[tuple[str, str]]]:
    """Every row as a Case, and (row ref, reason) for each row that could not be predicted."""
    rows = read_yaml(rows_path, error=EstimateError, max_bytes=MAX_DATASET_BYTES)["rows"]
    boxes = read_yaml(hardware_path, error=EstimateError)["boxes"]
    cases: list[Case] = []
    missed: list[tuple[str, str]] = []
    for row in rows:
        hw = row["hardware"]
        key = hw.get("gpu") or hw.get("cpu")
        try:
            profile = _profile(boxes[key], hw.get("ram_gb"))
            request = _request(row, row["backend"], None)
            view = load_model_view(request, catalog)
            request = _request(row, row["backend"], view.shape.n_ctx_train or None)
            devices = speed_inputs(request, profile, catalog)
        except (KeyError, EstimateError, HardwareError) as exc:
            missed.append((f"{row['source']}: {row['ref']}", f"{type(exc).__name__}: {exc}"))
            continue
        size = row.get("size_gib")
        ours = sum(t.nbytes for t in view.tensors if not t.mtp)
        ratio = size * GIB / ours if size else 1.0
        cases.append(
            Case(
                source=row["source"],
                backend=row["backend"],
                test=row["test"],
                depth=int(row.get("depth") or 0),
                n_prompt=int(row.get("n_prompt") or 512),
                measured=float(row["tps"]),
                family=str(key),
                label=f"{row['model']} {row['quant']} {row['backend']} {row['test']}"
                f"@d{row.get('depth') or 0} on {key}",
                devices=_scaled(devices, ratio, row["backend"]),
                key=_key(row["backend"], profile),
            )
        )
    return cases, missed


def predict(case: Case, backends: BackendCatalog, *, refined: bool = True) -> float:
    """The row's figure; with the backend-vendor factors where the catalog has them."""
    devices = list(case.devices)
    if refined and case.key in backends.backends:
        devices = [d if d.name == "host" else replace(d, backend=case.key) for d in devices]
    decode, prefill = efficiency_sets(devices, backends)
    if case.test == "tg":
        return min(decode_tps(devices, case.depth, decode[0]), decode_ceiling(devices, case.depth))
    return min(
        prefill_tps(devices, case.depth, prefill[0], prompt=case.n_prompt),
        prefill_ceiling(devices, case.depth, prompt=case.n_prompt),
    )


def _gmedian(values: Iterable[float]) -> float:
    logs = [math.log(v) for v in values if v > 0]
    return math.exp(statistics.median(logs)) if logs else 1.0


def _times(pair: tuple[float, float], s: float) -> tuple[float, float]:
    return min(pair[0] * s, 1.0), min(pair[1] * s, 1.0)


def _rescale(f: BackendFactors, tg: float, pp: float) -> BackendFactors:
    """The weight-phase factors scaled; the depth factors (KV read, attention) stay as the
    depth rows fitted them (benchmarks/depth_calibration.py)."""
    expert = min(f.expert_prefill_efficiency * pp, 1.0) if f.expert_prefill_efficiency else None
    return f.model_copy(
        update={
            "decode_efficiency": min(f.decode_efficiency * tg, 1.0),
            "decode_range": _times(f.decode_range, tg),
            "prefill_efficiency": min(f.prefill_efficiency * pp, 1.0),
            "prefill_range": _times(f.prefill_range, pp),
            "expert_prefill_efficiency": expert,
            "expert_prefill_range": _times(f.expert_prefill_range, pp),
        }
    )


def _scales(cases: list[Case], backends: BackendCatalog, refined: bool) -> tuple[float, float]:
    tg = _gmedian(c.measured / predict(c, backends, refined=refined) for c in cases
                  if c.test == "tg")  # fmt: skip
    pp = _gmedian(c.measured / predict(c, backends, refined=refined) for c in cases
                  if c.test == "pp")  # fmt: skip
    return tg, pp


MIN_GROUP_ROWS = 6  # fewer rows than this refine nothing: the backend's figure holds


def fit(cases: list[Case], backends: BackendCatalog, passes: int = 2) -> BackendCatalog:
    """Backend factors scaled so that the median row of each backend and test is exact; then,
    where rows exist, backend-vendor refinements (vulkan-intel) from the fitted backend."""
    fitted = backends
    for _ in range(passes):
        factors = dict(fitted.backends)
        for name in sorted({c.backend for c in cases}):
            # each backend-vendor group counts once (one slow GPU family with many rows
            # must not set the backend's figure for every other family), the hand-set
            # factors as one more: a prior that a lone odd family cannot override
            groups = sorted({c.key for c in cases if c.backend == name})
            scales = [_scales([c for c in cases if c.key == g], fitted, False) for g in groups]
            scales.append((1.0, 1.0))  # the factors as they stand count as one more group
            tg = _gmedian(s[0] for s in scales)
            pp = _gmedian(s[1] for s in scales)
            factors[name] = _rescale(factors[name], tg, pp)
        fitted = fitted.model_copy(update={"backends": factors})
    counts = {k: sum(1 for c in cases if c.key == k) for k in {c.key for c in cases}}
    keys = sorted(k for k, n in counts.items() if k != k.split("-")[0] and n >= MIN_GROUP_ROWS)
    factors = dict(fitted.backends)
    for key in keys:
        factors[key] = factors[key.split("-")[0]]  # vulkan-amd-unified starts from vulkan
    fitted = fitted.model_copy(update={"backends": factors})
    for _ in range(passes):
        factors = dict(fitted.backends)
        for key in keys:
            tg, pp = _scales([c for c in cases if c.key == key], fitted, True)
            factors[key] = _rescale(factors[key], tg, pp)
        fitted = fitted.model_copy(update={"backends": factors})
    return fitted


@dataclass(frozen=True)
class Scored:
    case: Case
    predicted: float

    @property
    def error(self) -> float:
        return abs(self.predicted / self.case.measured - 1.0)


def score(cases: list[Case], backends: BackendCatalog) -> list[Scored]:
    return [Scored(c, predict(c, backends)) for c in cases]


def leave_one_source_out(cases: list[Case], backends: BackendCatalog) -> list[Scored]:
    """Each source predicted by factors fitted without it."""
    out: list[Scored] = []
    for source in sorted({c.source for c in cases}):
        held = [c for c in cases if c.source == source]
        trained = fit([c for c in cases if c.source != source], backends)
        out += score(held, trained)
    return out


def summary(scored: list[Scored], test: str) -> tuple[int, float, float]:
    """(rows, median error, worst error) for `test` (pp or tg)."""
    errors = [s.error for s in scored if s.case.test == test]
    if not errors:
        return 0, 0.0, 0.0
    return len(errors), statistics.median(errors), max(errors)


FITTED_FIELDS = (
    "decode_efficiency",
    "decode_range",
    "prefill_efficiency",
    "prefill_range",
    "expert_prefill_efficiency",
    "expert_prefill_range",
)


def fitted_names(cases: list[Case], backends: BackendCatalog) -> set[str]:
    """The backends and backend-vendor groups a fit over `cases` produced."""
    return {c.backend for c in cases} | {c.key for c in cases if c.key in backends.backends}


def fitted_fields(backends: BackendCatalog, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The fitted fields of `names`, rounded to 3 figures, as speed_fit.yaml keeps them."""

    def r(value: Any) -> Any:
        if isinstance(value, tuple):
            return [round(v, 3) for v in value]
        return round(value, 3) if isinstance(value, float) else value

    out = {}
    for name in sorted(names):
        f = backends.backends[name]
        out[name] = {k: r(getattr(f, k)) for k in FITTED_FIELDS}
    return out
