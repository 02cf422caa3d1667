"""Turning a lock, a profile and measured points into shareable rows, and back into keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from stackctl import __version__
from stackctl.bench.models import (
    BenchBackend,
    BenchPoint,
    BenchRow,
    RowFlags,
    RowHardware,
    StoredResult,
    TestKind,
)
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile

SOURCE = "stackctl bench"
BACKENDS = ("cpu", "cuda", "rocm", "vulkan", "metal", "sycl")
PROMPT_FOR_TG = 0  # decode rows: llama-bench's tgN convention, the depth says the context
MIN_PP_PROMPT = 128  # a shorter prompt times the request overhead, not prefill: no pp row


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def row_hardware(hardware: HardwareProfile) -> RowHardware:
    gpus = hardware.accelerators
    total = hardware.memory.total_bytes
    return RowHardware(
        gpu=gpus[0].name if gpus else None,
        cpu=hardware.cpu.model,
        system=hardware.name,
        n_gpus=len(gpus),
        ram_gb=round(total / 1e9, 1) if total else None,
    )


def row_backend(name: str) -> BenchBackend:
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
    return cast(BenchBackend, name)


def lock_flags(lock: Lockfile) -> RowFlags:
    rt = lock.resolved.runtime
    return RowFlags(
        fa=rt.flash_attn == "on",
        n_cpu_moe=lock.resolved.placement.n_cpu_moe or None,
        threads=rt.threads,
        ubatch=rt.ubatch,
        type_k=rt.cache_type_k,
        type_v=rt.cache_type_v,
    )


def _row(
    lock: Lockfile,
    hardware: HardwareProfile,
    test: TestKind,
    point: BenchPoint,
    tps: float,
    spread: float | None,
    n_gen: int,
) -> BenchRow:
    r = lock.resolved
    return BenchRow(
        source=SOURCE,
        ref=lock.content_hash,
        hardware=row_hardware(hardware),
        backend=row_backend(r.engine.backend),
        build=r.engine.version,
        model=r.model.id,
        model_name=r.model.artefact.file,
        quant=r.model.quant,
        size_gib=round(r.model.artefact.size / 2**30, 3) if r.model.artefact.size else None,
        ngl=r.placement.ngl,
        flags=lock_flags(lock),
        test=test,
        n_prompt=point.depth if test == "pp" else PROMPT_FOR_TG,
        n_gen=n_gen if test == "tg" else 0,
        depth=0 if test == "pp" else point.depth,
        tps=tps,
        tps_std=round(spread * tps, 3) if spread is not None else None,
    )


def stored_from_points(
    lock: Lockfile, hardware: HardwareProfile, points: list[BenchPoint], n_gen: int
) -> list[StoredResult]:
    """Two rows per point (prefill, decode), each beside its prediction."""
    out = []
    date = now_utc()
    for p in points:
        figures: list[tuple[TestKind, float | None, float | None, float | None]] = [
            ("pp", p.pp_tps, p.spread.pp, p.predicted.pp_tps),
            ("tg", p.tg_tps, p.spread.tg, p.predicted.tg_tps),
        ]
        for test, tps, spread, predicted in figures:
            if not tps or (test == "pp" and p.depth < MIN_PP_PROMPT):
                continue
            out.append(
                StoredResult(
                    kind="measured",
                    engine=lock.resolved.engine.name,
                    date=date,
                    stackctl_version=__version__,
                    lock_hash=lock.content_hash,
                    clients=p.clients,
                    ttft_s=p.ttft_s,
                    predicted_tps=predicted,
                    host_gbps=hardware.cpu.bandwidth_gbps,
                    partial=p.partial,
                    note=p.error,
                    row=_row(lock, hardware, test, p, tps, spread, n_gen),
                )
            )
    return out
