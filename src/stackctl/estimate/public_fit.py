"""Public llama-bench rows (tests/data/speed/public_llama_bench.yaml) against the estimator:
per-row predictions, a fit of every speed factor, and leave-one-source-out validation.

Each row becomes the estimator's per-device bytes and ops (`speed_inputs`) once; predicting it
under other efficiency factors is then arithmetic. The weights read per token are scaled to the
file size the row states (a UD/imatrix file is not the catalog recipe's size). The fit
(`fit`) solves for every factor of the roofline by least squares on the rows' times
(estimate/fit_terms.py, estimate/ridge.py), level by level, each level pulled toward the one
above where its rows are few; it reads nothing but the rows it is given, so that
leave-one-source-out predicts each source from the others alone.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stackctl.detect import declare_hardware
from stackctl.errors import EstimateError, HardwareError
from stackctl.estimate.catalog import (
    HOST_OFFLOAD_FIELDS,
    BackendCatalog,
    BackendFactors,
    EstimateCatalog,
)
from stackctl.estimate.core import speed_inputs
from stackctl.estimate.devices import chip_kind
from stackctl.estimate.fit_terms import (
    FACTORS,
    Owner,
    decode_terms,
    inverse_factors,
    prefill_terms,
    with_factors,
)
from stackctl.estimate.ridge import Prior, Row, fit_bounded
from stackctl.estimate.speed import DeviceSpeed, figure_ends
from stackctl.estimate.view import load_model_view
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import Accelerator, CpuInfo, HardwareProfile, MemoryInfo, OsInfo
from stackctl.yamlio import MAX_DATASET_BYTES, read_yaml

GIB = 1 << 30


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
    key: str  # backend-vendor-kind, e.g. vulkan-amd-rdna3: refinements fitted where rows exist
    offload: bool = False  # experts in system RAM beside a GPU (--n-cpu-moe / -ot)


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
            peak_tflops_fp16=g.get("peak_tflops_fp16"),
            peak_source=g.get("peak_source"),
            clock_mhz=g.get("clock_mhz"),
            clock_source=g.get("clock_source"),
            arch=g.get("arch"),
        )
        box = box.model_copy(update={"accelerators": [acc]})
    if "host_link" in entry:  # the slot, where narrower than the card's own interface
        link = {"host_link": entry["host_link"]["link"],
                "host_link_source": entry["host_link"]["source"]}  # fmt: skip
        box = box.model_copy(
            update={"accelerators": [a.model_copy(update=link) for a in box.accelerators]}
        )
    cpu = box.cpu
    if "cpu" in entry:
        c = entry["cpu"]
        facts = {"model": c["model"], "cores": c["cores"], "threads": c["cores"],
                 "flags": c["flags"], "bandwidth_gbps": c["bandwidth_gbps"],
                 "bandwidth_source": c["source"], "core": c.get("core")}  # fmt: skip
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
    if ngl is not None and int(ngl) < 0:  # llama-bench -ngl -1: every layer on the GPU
        ngl = None
    return EstimateRequest(
        model=row["model"],
        quant=row["quant"],
        backend=backend,  # type: ignore[arg-type]
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


def _vendor(case: Case) -> str:
    """vulkan-amd for vulkan-amd-unified: the backend on that vendor's chips."""
    return "-".join(case.key.split("-")[:2])


def _key(backend: str, profile: HardwareProfile) -> str:
    """The backend on one kind of chip, as devices.backend_key names it: its matrix-unit
    generation where hardware.yaml names one (vulkan-amd-rdna3), else its memory kind
    (vulkan-amd-unified, cuda-nvidia-discrete). The fit writes a discrete group as the vendor's
    figure (fitted_fields), as devices.py reads `vulkan-amd` for a discrete chip."""
    if backend == "cpu" or not profile.accelerators:
        return backend
    acc = profile.accelerators[0]
    return f"{backend}-{acc.vendor}-{chip_kind(acc)}"


# Prefill rows of llama.cpp builds older than this measure kernels rewritten since; their decode
# rows stay. The same box and file: lhl's Strix Halo ROCm llama-2-7b Q4_0 prefill at build 6077
# is 660 tok/s, kyuz0's at 9187 1545. Fitted on all rows, the 17 prefill rows of builds 5863-6118
# (Jul-Aug 2025) come out +63 % (median), their decode rows -4 %; lhl's own sweep at build 6865
# and the DGX Spark rows at 6918 fit like the 2026 builds. The cut lies between 6118 and 6865.
PREFILL_MIN_BUILD = 6500
# A row whose build line gives no number (a bare commit, or none) is dated by its source: one
# dated before this day ran a build older than PREFILL_MIN_BUILD. llama.cpp's release b6451 was
# the current one on 2025-09-13 (xorbitsai/xllamacpp PR #81, "Update llama.cpp to b6451",
# 2025-09-13), so a build of an earlier day is below 6500. The rows this sets aside: the
# RTX 4090 F16/Q8_0/Q4_0 of llama.cpp PR #4766 (Jan 2024), the Xeon AMX PR branch of #7487
# (May 2024) and the RTX 2070 Vulkan master 141a908 of #13324 (May 2025); all three were
# over-predicted by 50-275 % (their decode rows fit within 5-46 %).
PREFILL_MIN_DATE = "2025-09-13"


def build_number(build: object) -> int | None:
    """llama.cpp's build number from a row's build line: "83bc2f28 (6077), ..." -> 6077."""
    found = re.search(r"\((\d+)\)", str(build or ""))
    return int(found.group(1)) if found else None


def set_aside(row: Mapping[str, Any], date: str | None = None) -> str | None:
    """Why a row is not used (prefill of a stale build), or None. `date`: its source's date
    (ISO), which dates a build line that gives no number."""
    if row["test"] != "pp":
        return None
    number = build_number(row.get("build"))
    if number is not None and number < PREFILL_MIN_BUILD:
        return f"prefill of build {number} < {PREFILL_MIN_BUILD}: kernels rewritten since"
    if number is None and date and date < PREFILL_MIN_DATE:
        return (f"prefill of a build dated {date}, before {PREFILL_MIN_DATE} (so < "
                f"{PREFILL_MIN_BUILD}): kernels rewritten since")  # fmt: skip
    return None


# What makes two rows of one source the same test: a run that repeats it (PMZFX's files repeat
# tg128 at depth 0 with the same KV type in each context variant) is one more repetition of one
# measurement, not another row, so it is averaged into the first rather than counted again.
SAME_TEST = ("source", "hardware", "backend", "build", "model", "quant", "size_gib", "ngl",
             "flags", "test", "n_prompt", "n_gen", "depth")  # fmt: skip
REPEAT = "repeats a test of its source (same box, build, file, flags): averaged into the first"


def _merge_repeats(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One row per test (its runs' mean), and (ref, REPEAT) for each run folded into another."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = json.dumps([row.get(k) for k in SAME_TEST], sort_keys=True)
        runs.setdefault(key, []).append(row)
    merged = [{**rs[0], "tps": statistics.mean(float(r["tps"]) for r in rs)}
              for rs in runs.values()]  # fmt: skip
    folded = [(f"{r['source']}: {r['ref']}", REPEAT) for rs in runs.values() for r in rs[1:]]
    return merged, folded


def public_rows(rows_path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The rows the fit uses, and (row ref, reason) for those set aside or folded into a run of
    the same test. A Vulkan row gets its source's `matrix_cores` (the matrix path its log's
    ggml_vulkan line shows), where known."""
    doc = read_yaml(rows_path, error=EstimateError, max_bytes=MAX_DATASET_BYTES)
    dates = {s["id"]: s.get("date") for s in doc.get("sources") or []}
    paths = {s["id"]: s["matrix_cores"]["value"] for s in doc.get("sources") or []
             if s.get("matrix_cores")}  # fmt: skip
    used: list[dict[str, Any]] = []
    aside: list[tuple[str, str]] = []
    for row in doc["rows"]:
        why = set_aside(row, dates.get(row["source"]))
        if why is None and row["backend"] == "vulkan" and row["source"] in paths:
            row = {**row, "matrix_cores": paths[row["source"]]}
        if why is None:
            used.append(row)
        else:
            aside.append((f"{row['source']}: {row['ref']}", why))
    used, folded = _merge_repeats(used)
    return used, aside + folded


def load_cases(
    rows_path: Path, hardware_path: Path, catalog: EstimateCatalog
) -> tuple[list[Case], list[tuple[str, str]]]:
    """Every row the fit uses as a Case, and (row ref, reason) for each row that could not be
    predicted (rows set aside by `set_aside` are neither)."""
    rows, _aside = public_rows(rows_path)
    boxes = read_yaml(hardware_path, error=EstimateError)["boxes"]
    cases: list[Case] = []
    missed: list[tuple[str, str]] = []
    for row in rows:
        hw = row["hardware"]
        key = hw.get("gpu") or hw.get("cpu")
        try:
            profile = _profile(boxes[key], hw.get("ram_gb"))
            if row.get("matrix_cores"):
                accs = [a.model_copy(update={"matrix_cores": row["matrix_cores"]})
                        for a in profile.accelerators]  # fmt: skip
                profile = profile.model_copy(update={"accelerators": accs})
            request = _request(row, row["backend"], None)
            view = load_model_view(request, catalog)
            request = _request(row, row["backend"], view.shape.n_ctx_train or None)
            devices = speed_inputs(request, profile, catalog)
        except (KeyError, EstimateError, HardwareError) as exc:
            missed.append((f"{row['source']}: {row['ref']}", f"{type(exc).__name__}: {exc}"))
            continue
        size = row.get("size_gib")
        ours = view.loaded_bytes()
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
                offload=bool(request.n_cpu_moe or request.override_tensor),
            )
        )
    return cases, missed


def predict(case: Case, backends: BackendCatalog, *, refined: bool = True) -> float:
    """The row's figure; with the backend-vendor factors where the catalog has them, and the
    host's offload factors (hand-over per split layer, host link) from the `cpu` entry."""
    return predict_ends(case, backends, refined=refined)[0]


def predict_ends(
    case: Case, backends: BackendCatalog, *, refined: bool = True, ends: int = 1
) -> tuple[float, ...]:
    """(figure, low, high) as speed_figures gives them (`ends` 3), or (figure,) alone."""
    cpu = backends.backends["cpu"]
    devices = []
    for d in case.devices:
        if d.backend == "cpu":
            share = cpu.host_link_efficiency or 0.0
            link = share * d.link_peak_gbps if d.link_ubatch else d.link_gbps
            split = (cpu.expert_split_overhead_ms or 0.0) * 1e-3
            devices.append(replace(d, split_s=split, link_gbps=link or 0.0))
        elif refined:  # as devices.py picks: vulkan-amd-rdna3, vulkan-amd, vulkan
            name = next((k for k in (case.key, _vendor(case)) if k in backends.backends), d.backend)
            devices.append(replace(d, backend=name))
        else:
            devices.append(d)
    return figure_ends(devices, case.depth, backends, case.test, case.n_prompt, ends)


# The starting point of every GPU backend before any row is seen: an assumption, not fitted
# to any row (so that a source left out leaves no trace): 0.7 of bandwidth for weights and
# 0.8 for the KV read, 50 us per layer, half the peak for dense prefill, a quarter for the
# small per-expert batches and for attention. The fit pulls toward it only where rows are few.
NEUTRAL_GPU = BackendFactors(
    decode_efficiency=0.7,
    decode_range=(0.5, 0.85),
    kv_read_efficiency=0.8,
    kv_read_range=(0.6, 0.9),
    layer_overhead_ms=0.05,
    layer_overhead_range=(0.0, 0.15),
    attention_decode_efficiency=0.25,
    attention_decode_range=(0.15, 0.35),
    prefill_efficiency=0.5,
    prefill_range=(0.3, 0.7),
    expert_prefill_efficiency=0.25,
    expert_prefill_range=(0.12, 0.4),
    attention_prefill_efficiency=0.25,
    attention_prefill_range=(0.15, 0.35),
)
# The host link before any offload row: ~25 of PCIe 4.0 x16's 31.5 GB/s per direction
# (PCI-SIG) in practice is an assumption. No hand-over cost is assumed.
HOST_LINK_PRIOR_SHARE = 0.8
PRIOR_WEIGHT = 0.25  # a prior counts as this many rows of one source
PRIOR_SCALE = 1.0  # ... at this relative deviation
LAYER_SCALE_S = 1e-4  # seconds per layer: an absolute scale (the prior may be 0)
# Seconds per routed expert a decoded token uses, per MoE layer: a backend that dispatches each
# expert's matrix-vector product on its own (no single grouped kernel for MUL_MAT_ID) pays one
# launch's worth per expert. Prior 0: one grouped kernel, as b11434's CUDA (mmvq with ids) and
# Vulkan (mul_mat_vec_id) run it; at the scale of a kernel launch (tens of microseconds); never
# negative (an MoE is not read faster than its bytes). Fitted, SYCL and Vulkan on Intel take
# 0.008-0.022 ms, ROCm 0.003, CUDA and Vulkan on AMD 0; leave-one-source-out decode went 11.2 ->
# 9.6 %, prefill unchanged (before, the fit traded the Intel sources' dense rows against their
# MoE rows: SYCL B70 dense -32 %, MoE +28 %). The public SYCL rows predate b11434's fused
# expert GEMV (ggml_sycl_mul_mat_id_mmvq_fused), so there the figure may overstate the cost.
EXPERT_SCALE_S = 2e-5
# Backends whose pinned build multiplies a layer's routed experts in one grouped kernel
# (b11434 ggml-cuda mmvq.cu: MUL_MAT_ID with ids): no per-expert dispatch to pay, so their
# per-expert time is 0 by construction, not fitted. Left free, the fit traded it against the
# per-layer time (CUDA 0.002-0.004 ms per expert for 0.061 -> 0.027 ms per layer once the
# one-CCD hosts of the offload rows read at their die link), which moves every dense model's
# figure for a collinearity among MoE rows; leave-one-source-out is the same either way
# (decode 10.5 %, MoE offload 12.0-12.3 %).
GROUPED_EXPERTS = frozenset({"cuda"})
# the inverse efficiencies: 1 (physics) to 100; the fixed seconds and the KV passes as here
BOUNDS = {"L": (0.0, 2e-3), "E": (0.0, 1e-3), "pkv": (0.0, 1.0), "S": (0.0, 2e-5)}
# Seconds per prompt token per recurrent layer: the pinned build scans a Gated DeltaNet layer's
# state one token after another in prefill (speed.py SCAN_NOTE). Prior 0 (no such cost), at
# the scale of one step's latency chain (about a microsecond); never negative; at most 20 us.
SCAN_SCALE_S = 1e-6
PASSES_SCALE = 1.0 / 32  # passes over the attended KV: an absolute scale (the prior may be 0)
PASSES = 4
# A quant family's decode time multiplier: 1 (no slower than the backend's best kernel) to 10,
# pulled toward the level above (1 at the backend level: the kernels are each backend's own) at
# this relative scale, like the other factors. (Prefill multipliers per family were tried the
# same way: leave-one-source-out prefill got no better at any prior strength, 30.7 % median ->
# 30.7-33.5 %, so prefill keeps one figure per backend.)
QUANT_BOUNDS = (1.0, 10.0)
QUANT_SCALE = 1.0
# Fewer rows than this refine nothing: the backend's figure holds. Three let one small box (the
# A310's three rows) carry its vendor's driver to a held-out sibling (the B70): 6 -> 3 took
# leave-one-source-out prefill from 30.9 % to 27.6 % and decode worst from 400 % to 184 %.
MIN_GROUP_ROWS = 3
HUBER = 0.5  # log-error beyond which a row's pull stops growing


def _priors(
    owner: str, parent: Mapping[str, float], weight: float, quant: bool = True
) -> dict[str, Prior]:
    out = {}
    for k in FACTORS:
        if not quant and k.startswith("qd."):
            continue
        value = parent[f"{owner}:{k}"]
        low, high = BOUNDS.get(k, (1.0, 100.0))
        scale = {
            "L": LAYER_SCALE_S,
            "E": EXPERT_SCALE_S,
            "pkv": PASSES_SCALE,
            "S": SCAN_SCALE_S,
        }.get(k, PRIOR_SCALE * value)
        if k.startswith("qd."):
            low, high = QUANT_BOUNDS
            scale = QUANT_SCALE * value
        if k == "E" and owner.split("-")[0] in GROUPED_EXPERTS:
            value, low, high = 0.0, 0.0, 0.0
        out[f"{owner}:{k}"] = Prior(value, weight, scale, low, high)
    return out


def _row(
    c: Case, owner: Owner, x: Mapping[str, float], fitted: set[str], weight: float
) -> Row | None:
    """The case as 'predicted seconds / measured seconds = 1', the parameters not being
    fitted taken at their current values."""
    if c.test == "tg":
        coef, const = decode_terms(c.devices, c.depth, owner, x)
    else:
        coef, const = prefill_terms(c.devices, c.depth, c.n_prompt, owner, x)
    # residual (predicted - measured) / sqrt(predicted x measured) at the current factors: a
    # symmetric stand-in for the log ratio (the plain relative error lets a fit buy a 4x
    # overestimate of speed for what a 4x underestimate would cost)
    measured = 1.0 / c.measured
    predicted = const + sum(v * x[n] for n, v in coef.items())
    scale = math.sqrt(measured * predicted) if predicted > 0 else measured
    const += sum(v * x[n] for n, v in coef.items() if n not in fitted)
    scaled = {n: v / scale for n, v in coef.items() if n in fitted}
    return Row(scaled, (measured - const) / scale, weight) if scaled else None


def _miss(c: Case, owner: Owner, x: Mapping[str, float]) -> float:
    """log(predicted / measured seconds) at the current factors."""
    if c.test == "tg":
        coef, const = decode_terms(c.devices, c.depth, owner, x)
    else:
        coef, const = prefill_terms(c.devices, c.depth, c.n_prompt, owner, x)
    predicted = const + sum(v * x[n] for n, v in coef.items())
    return math.log(predicted * c.measured) if predicted > 0 else 0.0


def _huber(group: list[Case], level: Callable[[Case], str], x: Mapping[str, float]) -> list[float]:
    """Per case, the weight that bounds its pull: a row the model cannot explain (BF16 on
    Vulkan, a slow driver at depth) counts less once it lies further than HUBER from its
    group's median miss (the median, so that a group starting far off still moves)."""
    misses = [_miss(c, _owner(level(c)), x) for c in group]
    centre = {t: statistics.median([m for m, c in zip(misses, group, strict=True) if c.test == t])
              for t in {c.test for c in group}}  # fmt: skip
    out = []
    for m, c in zip(misses, group, strict=True):
        off = abs(m - centre[c.test])
        out.append(min(1.0, HUBER / off) if off else 1.0)
    return out


def _owner(name: str) -> Owner:
    return lambda d: "cpu" if d.backend == "cpu" else name


def _solve(group: list[Case], level: Callable[[Case], str], x: dict[str, float],
           priors: dict[str, Prior]) -> None:  # fmt: skip
    """Fit the parameters in `priors` to `group` in place, each source counting about equally
    (1 / sqrt(its rows)); the roofline branches are chosen again with each new solution."""
    per_source = Counter((c.source, c.test) for c in group)
    for _ in range(PASSES):
        bounded = _huber(group, level, x)
        rows = [_row(c, _owner(level(c)), x, set(priors),
                     h / math.sqrt(per_source[c.source, c.test]))
                for c, h in zip(group, bounded, strict=True)]  # fmt: skip
        x.update(fit_bounded([r for r in rows if r is not None], priors))


def _fit_level(cases: list[Case], level: Callable[[Case], str], parent: Callable[[str], str],
               x: dict[str, float], *, quant: bool = True) -> None:  # fmt: skip
    for name in sorted({level(c) for c in cases}):
        group = [c for c in cases if level(c) == name]
        parents = {f"{name}:{k}": x[f"{parent(name)}:{k}"] for k in FACTORS}
        for k, v in parents.items():
            x.setdefault(k, v)
        _solve(group, level, x, _priors(name, parents, PRIOR_WEIGHT, quant))


def _fit_host(cases: list[Case], x: dict[str, float]) -> None:
    offload = [c for c in cases if any(d.split_layers or d.link_ubatch for d in c.devices)]
    priors = {
        "host:split": Prior(0.0, PRIOR_WEIGHT, LAYER_SCALE_S, 0.0, 2e-3),
        # physics: no copy beats its link's own rate (host_link.py: PCI-SIG per lane)
        "host:ilink": Prior(
            1.0 / HOST_LINK_PRIOR_SHARE,
            PRIOR_WEIGHT,
            PRIOR_SCALE / HOST_LINK_PRIOR_SHARE,
            1.0,
            100.0,
        ),
    }
    # the host's stated bandwidth share its offloaded experts are read at: from the CPU's own
    # decode share (catalog/backends.yaml, never fitted), never above the bandwidth
    iw = x["cpu:iw"]
    priors["host:iw"] = Prior(iw, PRIOR_WEIGHT, PRIOR_SCALE * iw, 1.0, 100.0)
    if not offload:
        x.update({n: p.value for n, p in priors.items()})
        return
    _solve(offload, lambda c: c.key, x, priors)


def on_fp16(case: Case) -> Case:
    """The case with every matmul at the FP16 peak (no int8 reference)."""
    devices = tuple(replace(d, int8_matmul=False) for d in case.devices)
    return replace(case, devices=devices)


def fit(cases: list[Case], backends: BackendCatalog) -> BackendCatalog:
    """Every factor of the speed model fitted to `cases` alone, in levels that pull toward the
    level above where rows are few: the GPUs from an assumption (NEUTRAL_GPU) to all GPU rows
    pooled, to each backend, to each backend-vendor group (vulkan-intel), to each backend on one
    chip generation or memory kind (rocm-amd-rdna3, cuda-nvidia-unified). The host's offload
    factors from the offload rows. Nothing a held-out source measured enters
    (leave_one_source_out)."""
    x = {
        **inverse_factors("cpu", backends.backends["cpu"]),
        **inverse_factors("neutral", NEUTRAL_GPU),
    }
    x.update({"host:split": 0.0, "host:ilink": 1.0 / HOST_LINK_PRIOR_SHARE,
              "host:iw": x["cpu:iw"]})  # fmt: skip
    x.update({f"gpu:{k}": x[f"neutral:{k}"] for k in FACTORS})
    # The CPU keeps backends.yaml's factors (this project's runs on its own boxes), as the
    # estimator ships them: the public CPU rows are predicted, never fitted, so that the host's
    # offload factors below are fitted against the CPU figures a prediction will use.
    gpu_cases = [c for c in cases if c.backend != "cpu"]
    # a backend-vendor group of fewer than MIN_GROUP_ROWS rows refines nothing
    vendor_rows = Counter(_vendor(c) for c in gpu_cases)
    by_vendor = [c for c in gpu_cases if vendor_rows[_vendor(c)] >= MIN_GROUP_ROWS]
    rows = Counter(c.key for c in by_vendor)
    refined = [c for c in by_vendor if rows[c.key] >= MIN_GROUP_ROWS]
    pooled = [on_fp16(c) for c in gpu_cases]
    for _ in range(2):  # the host's factors and the GPUs' depend on each other
        # the quant kernels are each backend's own: no pooled figure across backends; the
        # pooled prefill shares are of every chip's FP16 peak (a backend's own may be of its
        # int8 rate: CUDA's, BackendFactors.prefill_int8)
        _fit_level(pooled, lambda c: "gpu", lambda n: "neutral", x, quant=False)
        _fit_level(gpu_cases, lambda c: c.backend, lambda n: "gpu", x)
        _fit_level(by_vendor, _vendor, lambda n: n.split("-")[0], x)
        _fit_level(refined, lambda c: c.key, lambda n: "-".join(n.split("-")[:2]), x)
        _fit_host(gpu_cases, x)
    factors = dict(backends.backends)
    host = {
        "expert_split_overhead_ms": x["host:split"] * 1e3,
        "host_link_efficiency": 1.0 / x["host:ilink"],
        "offload_decode_efficiency": 1.0 / x["host:iw"],
    }
    factors["cpu"] = factors["cpu"].model_copy(update=host)
    names = {c.backend for c in gpu_cases} | {_vendor(c) for c in by_vendor}
    names |= {c.key for c in refined}
    for name in sorted(names):
        base = factors.get(name) or factors[name.split("-")[0]]
        factors[name] = with_factors(base, name, x)
    # a GPU backend no row measured takes the pooled GPU figures, not its hand-set ones
    for name, f in backends.backends.items():
        if name not in names and name != "cpu" and name in GPU_BACKENDS:
            factors[name] = with_factors(f, "gpu", x)
    return backends.model_copy(update={"backends": factors})


GPU_BACKENDS = frozenset({"cuda", "rocm", "vulkan", "sycl", "metal"})


@dataclass(frozen=True)
class Scored:
    case: Case
    predicted: float
    low: float = 0.0  # the predicted range, where scored with one (score(ranges=True))
    high: float = 0.0

    @property
    def error(self) -> float:
        return abs(self.predicted / self.case.measured - 1.0)


def score(cases: list[Case], backends: BackendCatalog, *, ranges: bool = False) -> list[Scored]:
    return [Scored(c, *predict_ends(c, backends, ends=3 if ranges else 1)) for c in cases]


def leave_one_source_out(cases: list[Case], backends: BackendCatalog) -> list[Scored]:
    """Each source predicted by factors fitted without it, with its range."""
    out: list[Scored] = []
    for source in sorted({c.source for c in cases}):
        held = [c for c in cases if c.source == source]
        trained = fit([c for c in cases if c.source != source], backends)
        out += score(held, trained, ranges=True)
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
    "kv_read_efficiency",
    "kv_read_range",
    "layer_overhead_ms",
    "layer_overhead_range",
    "expert_slot_ms",
    "expert_slot_range",
    "attention_decode_efficiency",
    "attention_decode_range",
    "prefill_efficiency",
    "prefill_range",
    "expert_prefill_efficiency",
    "expert_prefill_range",
    "attention_prefill_efficiency",
    "attention_prefill_range",
    "quant_decode_factor",
    "prefill_kv_passes",
    "prefill_kv_passes_range",
    "scan_step_us",
    "scan_step_range",
)


def fitted_names(cases: list[Case], backends: BackendCatalog) -> set[str]:
    """The backends and backend-vendor groups a fit over `cases` produced, and `cpu`."""
    groups = {_vendor(c) for c in cases} | {c.key for c in cases}
    return {"cpu"} | {c.backend for c in cases} | (groups & set(backends.backends))


# Decode factors (bandwidth share, KV read, ms per layer) that rest on this project's depth
# runs of Strix Halo (backends.yaml DEPTH, tests/data/estimate/depth_reference.yaml) and that
# the plans' decode floors were set against: the fit's prefill factors are laid over them, its
# decode factors are only reported.
DECODE_CALIBRATED = frozenset({"rocm", "rocm-amd", "rocm-amd-unified", "rocm-amd-rdna3", "vulkan",
                               "vulkan-amd", "vulkan-amd-unified", "vulkan-amd-rdna3"})  # fmt: skip
PREFILL_FIELDS = tuple(f for f in FITTED_FIELDS if "prefill" in f)


def fitted_fields(backends: BackendCatalog, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The fitted fields of `names`, rounded to 3 places, as speed_fit.yaml keeps them, under
    the names devices.py looks up: a discrete group (vulkan-amd-discrete) is the vendor's
    figure (vulkan-amd), over the vendor group's."""

    def r(value: Any) -> Any:
        if isinstance(value, tuple):
            return [round(v, 3) for v in value]
        if isinstance(value, dict):
            return {k: round(v, 3) for k, v in value.items()}
        return round(value, 3) if isinstance(value, float) else value

    out = {}
    for name in sorted(names):  # vulkan-amd-discrete sorts after vulkan-amd: it wins
        f = backends.backends[name]
        target = name.removesuffix("-discrete")
        # the CPU's own factors rest on this project's runs (backends.yaml M-CPU): from the
        # public rows only its offload factors are taken
        fields = tuple(sorted(HOST_OFFLOAD_FIELDS)) if name == "cpu" else FITTED_FIELDS
        if target in DECODE_CALIBRATED:
            fields = PREFILL_FIELDS
        out[target] = {k: r(getattr(f, k)) for k in fields if getattr(f, k) != {}}
    return out
