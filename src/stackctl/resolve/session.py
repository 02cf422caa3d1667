"""Catalogs loaded once and a memo of estimates, plus the requests the resolver asks of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from stackctl.errors import EstimateError
from stackctl.estimate import EstimateCatalog, estimate
from stackctl.lock import canonical_json, hardware_sha256
from stackctl.models.catalog import Catalog
from stackctl.models.estimate import Backend, CacheType, Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy
from stackctl.resolve.candidate import Candidate


@dataclass
class Session:
    """Catalogs loaded once and an estimate memo: resolving many hosts reuses both."""

    estimates: EstimateCatalog
    memo: dict[str, Estimate | str] = field(default_factory=dict)
    calls: int = 0
    corrections: dict[str, float] = field(default_factory=dict)  # MTP calibration per model


@dataclass
class Loaded:
    """Everything the stages read, loaded once: the catalog, the policy and the session."""

    catalog: Catalog
    policy: Policy
    session: Session


def estimate_for(session: Session, request: EstimateRequest, hw: HardwareProfile) -> Estimate | str:
    """A memoised estimate for any request (calibration runs on other boxes than the plan's)."""
    return estimate_cached(session, request, hw, hardware_sha256(hw))


def estimate_cached(
    session: Session, request: EstimateRequest, hardware: HardwareProfile, hw_key: str
) -> Estimate | str:
    key = hw_key + canonical_json(request.model_dump(mode="json"))
    if key not in session.memo:
        session.calls += 1
        try:
            session.memo[key] = estimate(request, hardware, catalog=session.estimates)
        except EstimateError as exc:
            session.memo[key] = exc.message
    return session.memo[key]


def threads_of(hardware: HardwareProfile) -> int | None:
    """Threads for the server: physical cores (decode is memory-bound: one thread per core
    beats SMT siblings), or None = not set, when the profile does not know its cores (a
    declared GPU without --cpu): the engine picks its default and no --threads is emitted."""
    return hardware.cpu.cores


def request_for(
    c: Candidate, hardware: HardwareProfile, users: int, **place: object
) -> EstimateRequest:
    backend: Backend = c.backend  # type: ignore[assignment]
    kv: CacheType = c.kv  # type: ignore[assignment]
    return EstimateRequest(
        model=c.entry.id,
        quant=c.artefact.quant,
        ctx=c.ctx * users,
        parallel=users,
        backend=backend,
        threads=threads_of(hardware),
        repack=c.repack,
        cache_type_k=kv,
        cache_type_v=kv,
        **place,  # type: ignore[arg-type]
    )
