"""Resolve intent + hardware into one concrete stack, explaining each choice.

This is the walking-skeleton resolver: a CPU-only box and the catalog's artefacts. It already
goes through the estimator for every candidate, so deeper resolution (issue 5) adds candidates
and scoring, not a new path.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.engines import llamacpp
from stackctl.errors import ResolutionError
from stackctl.estimate import estimate
from stackctl.models.catalog import Catalog, EngineEntry, ModelArtefact
from stackctl.models.estimate import Backend, CacheType, Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.models.resolved import (
    ArtefactPin,
    EnginePin,
    ModelChoice,
    Prediction,
    ResolvedStack,
    RuntimeFlags,
)
from stackctl.models.spec import StackSpec

BACKEND: Backend = "cpu"
CACHE_TYPE: CacheType = "f16"


@dataclass(frozen=True)
class Candidate:
    artefact: ModelArtefact
    estimate: Estimate | None
    rejected: str | None


def _threads(hardware: HardwareProfile) -> int:
    # Decode is memory-bound: one thread per physical core beats SMT siblings.
    return hardware.cpu.cores or hardware.cpu.threads or 1


def _request(
    spec: StackSpec, artefact: ModelArtefact, hardware: HardwareProfile
) -> EstimateRequest:
    return EstimateRequest(
        model=artefact.model,
        quant=artefact.quant,
        ctx=spec.context * spec.users,
        parallel=spec.users,
        backend=BACKEND,
        threads=_threads(hardware),
        cache_type_k=CACHE_TYPE,
        cache_type_v=CACHE_TYPE,
    )


def _candidates(spec: StackSpec, catalog: Catalog) -> list[ModelArtefact]:
    if spec.pin is None:
        return list(catalog.artefacts)
    pin = spec.pin
    found = [
        a
        for a in catalog.artefacts
        if a.model == pin.model and (pin.quant is None or a.quant == pin.quant)
    ]
    if not found:
        known = sorted({f"{a.model} {a.quant}" for a in catalog.artefacts})
        raise ResolutionError(
            f"stack '{spec.name}' pins {pin.model} {pin.quant or ''}".rstrip()
            + ", which the catalog has no file for",
            hint="catalog models with files: " + ", ".join(known),
        )
    return found


def _judge(spec: StackSpec, artefact: ModelArtefact, hardware: HardwareProfile) -> Candidate:
    result = estimate(_request(spec, artefact, hardware), hardware)
    if not result.fits:
        short = max(d.shortfall_bytes for d in result.memory.devices)
        return Candidate(artefact, result, f"does not fit: {short / 2**20:.0f} MiB short")
    if spec.pin is None and result.speed.tg_tps_range[1] < spec.min_tg_tps:
        return Candidate(
            artefact,
            result,
            f"too slow: at most {result.speed.tg_tps_range[1]:.1f} tok/s decode, "
            f"the stack asks for {spec.min_tg_tps:g}",
        )
    return Candidate(artefact, result, None)


def _engine(catalog: Catalog) -> EngineEntry:
    for engine in catalog.engines:
        if BACKEND in engine.backends:
            return engine
    raise ResolutionError(f"the catalog has no engine build for backend '{BACKEND}'")


def _engine_pin(engine: EngineEntry) -> EnginePin:
    flags = llamacpp.cmake_flags(engine, BACKEND)
    src = engine.source
    return EnginePin(
        name=engine.name,
        version=engine.version,
        build_number=engine.build_number,
        commit=engine.commit,
        backend=BACKEND,
        source=ArtefactPin(
            url=src.url,
            file=src.file,
            sha256=src.sha256,
            size=src.size,
            verified=src.sha256 is not None,
            origin=src.origin,
        ),
        source_subdir=src.subdir,
        cmake_flags=flags,
        targets=list(engine.binaries),
        build_key=llamacpp.build_key(src.sha256, src.url, flags, list(engine.binaries)),
    )


def _model_choice(artefact: ModelArtefact) -> ModelChoice:
    return ModelChoice(
        id=artefact.model,
        quant=artefact.quant,
        kind=artefact.kind,
        repo=artefact.repo,
        revision=artefact.revision,
        license=artefact.license,
        artefact=ArtefactPin(
            url=artefact.url,
            file=artefact.file,
            sha256=artefact.sha256,
            size=artefact.size,
            verified=artefact.sha256 is not None,
            origin=artefact.origin,
        ),
    )


def _runtime(spec: StackSpec, hardware: HardwareProfile, model_id: str) -> RuntimeFlags:
    context = spec.context * spec.users  # llama-server splits -c across its slots
    threads = _threads(hardware)
    args = llamacpp.server_args(
        host=spec.serve.host,
        port=spec.serve.port,
        context=context,
        threads=threads,
        flash_attn="on",
        parallel=spec.users,
        cache_type_k=CACHE_TYPE,
        cache_type_v=CACHE_TYPE,
        alias=model_id,
    )
    return RuntimeFlags(
        host=spec.serve.host,
        port=spec.serve.port,
        context=context,
        threads=threads,
        flash_attn="on",
        parallel=spec.users,
        cache_type_k=CACHE_TYPE,
        cache_type_v=CACHE_TYPE,
        server_args=args,
    )


def _prediction(result: Estimate) -> Prediction:
    return Prediction(
        memory_total_bytes=result.memory.total_bytes,
        tg_tps=round(result.speed.tg_tps, 1),
        tg_tps_range=(
            round(result.speed.tg_tps_range[0], 1),
            round(result.speed.tg_tps_range[1], 1),
        ),
        pp_tps=round(result.speed.pp_tps, 1),
        pp_tps_range=(
            round(result.speed.pp_tps_range[0], 1),
            round(result.speed.pp_tps_range[1], 1),
        ),
        basis=list(result.basis),
    )


def _pick(candidates: list[Candidate]) -> Candidate:
    accepted = [c for c in candidates if c.rejected is None]
    if not accepted:
        raise ResolutionError(
            "no candidate fits this box",
            details=[f"{c.artefact.model} {c.artefact.quant}: {c.rejected}" for c in candidates],
        )
    # Skeleton scoring: the largest model that fits and is fast enough.
    return max(accepted, key=lambda c: (c.artefact.size or 0, c.artefact.model))


def resolve_stack(spec: StackSpec, hardware: HardwareProfile, catalog: Catalog) -> ResolvedStack:
    candidates = [_judge(spec, a, hardware) for a in _candidates(spec, catalog)]
    chosen = _pick(candidates)
    assert chosen.estimate is not None
    reasons = [
        f"{chosen.artefact.model} {chosen.artefact.quant}: "
        + (
            "pinned by the stack"
            if spec.pin
            else "largest catalog model that fits and is fast enough"
        ),
        f"backend {BACKEND}: {len(hardware.accelerators)} accelerator(s) detected; "
        "GPU backends are not resolved yet, so the CPU serves",
        f"threads {_threads(hardware)}: physical cores",
    ]
    reasons += [
        f"rejected {c.artefact.model} {c.artefact.quant}: {c.rejected}"
        for c in candidates
        if c.rejected
    ]
    return ResolvedStack(
        stack=spec.name,
        workload=spec.workload,
        hardware=hardware.name,
        engine=_engine_pin(_engine(catalog)),
        model=_model_choice(chosen.artefact),
        runtime=_runtime(spec, hardware, chosen.artefact.model),
        service=f"stackctl-{spec.name}",
        predicted=_prediction(chosen.estimate),
        reasons=reasons,
    )
